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

from worker import JobContext, handler


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
