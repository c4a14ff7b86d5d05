"""Handlers for end-to-end tests. Every execution is appended to a ledger file outside
Redis (O_APPEND, one JSON line per write), so lost and duplicated executions are counted
exactly even when Redis or a worker is killed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any

from conveyor.worker import JobContext, handler


def _ledger(event: str, ctx: JobContext, **extra: Any) -> None:
    path = os.environ["CONVEYOR_TEST_LEDGER"]
    line = {
        "event": event,
        "job_id": ctx.job_id,
        "attempt": ctx.attempt,
        "worker": ctx.worker_id,
        "pid": os.getpid(),
        "t": time.time(),
        **extra,
    }
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


@handler("test.record")
async def record(ctx: JobContext, payload: Any) -> dict[str, Any]:
    """Sleeps `payload["ms"]` milliseconds between a start and an end ledger line."""
    _ledger("start", ctx)
    await asyncio.sleep(float((payload or {}).get("ms", 0)) / 1000)
    _ledger("end", ctx)
    return {"worker": ctx.worker_id, "attempt": ctx.attempt}


@handler("test.ignore_cancel")
def ignore_cancel(ctx: JobContext, payload: Any) -> str:
    """A sync handler that runs `seconds` and never looks at ctx.cancelled."""
    _ledger("start", ctx)
    time.sleep(float(payload["seconds"]))
    _ledger("end", ctx)
    return "done"


@handler("test.kill_worker")
async def kill_worker(ctx: JobContext, payload: Any) -> None:
    """Poison: records its start, then SIGKILLs the worker process running it."""
    _ledger("start", ctx)
    os.kill(os.getpid(), signal.SIGKILL)


@handler("test.fail_times")
async def fail_times(ctx: JobContext, payload: Any) -> dict[str, Any]:
    """Raises a retryable error on attempts 1..`payload["times"]` (a "fail" ledger line
    each), then succeeds between a start and an end ledger line."""
    if ctx.attempt <= int((payload or {}).get("times", 1)):
        _ledger("fail", ctx)
        raise RuntimeError("downstream unavailable")
    _ledger("start", ctx)
    _ledger("end", ctx)
    return {"attempt": ctx.attempt}


@handler("test.shield")
async def shield(ctx: JobContext, payload: Any) -> str:
    """An async handler that runs `seconds` and swallows every cancellation (a
    "cancel_ignored" ledger line each), as a handler shielding its work would."""
    _ledger("start", ctx)
    deadline = time.monotonic() + float(payload["seconds"])
    while (left := deadline - time.monotonic()) > 0:
        try:
            await asyncio.sleep(left)
        except asyncio.CancelledError:
            _ledger("cancel_ignored", ctx)
    _ledger("end", ctx)
    return "done"


@handler("test.probe")
async def probe(ctx: JobContext, payload: Any) -> dict[str, int]:
    """Reports the worker running it: its pid and its asyncio tasks (this one included)."""
    return {"pid": os.getpid(), "tasks": len(asyncio.all_tasks())}


@handler("test.payload_digest")
async def payload_digest(ctx: JobContext, payload: Any) -> dict[str, Any]:
    """Reports what it received: the size and sha256 of its payload as canonical JSON
    (sorted keys, no spaces, UTF-8), in its result and on its end ledger line."""
    import hashlib

    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    encoded = data.encode("utf-8", "surrogatepass")
    seen = {"bytes": len(encoded), "sha256": hashlib.sha256(encoded).hexdigest()}
    _ledger("start", ctx)
    _ledger("end", ctx, **seen)
    return seen
