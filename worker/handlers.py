"""Built-in sample handlers, registered in every worker.

- ``echo``: returns its payload.
- ``sleep``: ``{"seconds": x}``; sleeps, and stops at once when canceled.
- ``fail``: ``{"times": n, "message": s}``; raises ``s`` on attempts 1..n, then returns
  ``{"attempt": k}``. Handy to watch retries and backoff.
- ``text.stats``: ``{"text": "..."}``; a plain (sync, thread-pool) function that counts
  lines, words and characters and returns the most frequent words.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

from conveyor.worker.context import JobContext
from conveyor.worker.errors import PermanentError
from conveyor.worker.registry import Registry

builtin = Registry()


@builtin.handler("echo")
async def echo(ctx: JobContext, payload: Any) -> Any:
    return payload


@builtin.handler("sleep")
async def sleep(ctx: JobContext, payload: Any) -> dict[str, float]:
    seconds = _number(payload, "seconds")
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@builtin.handler("fail")
async def fail(ctx: JobContext, payload: Any) -> dict[str, int]:
    times = int(_number(payload, "times"))
    message = payload.get("message", "failing on purpose") if isinstance(payload, dict) else ""
    if ctx.attempt <= times:
        raise RuntimeError(str(message))
    return {"attempt": ctx.attempt}


_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")


@builtin.handler("text.stats", timeout=60)
def text_stats(ctx: JobContext, payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
        raise PermanentError('payload must be {"text": "<string>"}')
    text: str = payload["text"]
    words = Counter()  # type: Counter[str]
    for i, line in enumerate(text.splitlines()):
        if i % 1000 == 0:
            ctx.raise_if_cancelled()
        words.update(w.lower() for w in _WORD.findall(line))
    return {
        "lines": len(text.splitlines()),
        "words": sum(words.values()),
        "characters": len(text),
        "top": [{"word": w, "count": c} for w, c in words.most_common(10)],
    }


def _number(payload: Any, name: str) -> float:
    value = payload.get(name) if isinstance(payload, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise PermanentError(f'payload must be {{"{name}": <non-negative number>}}')
    return float(value)
