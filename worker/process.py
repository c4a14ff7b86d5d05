"""Running a long-lived asyncio component as a process: event loop, signals, exit."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Collection, Coroutine
from typing import Any

log = logging.getLogger("conveyor")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return None
    return uvloop.new_event_loop


def run_until_signalled(main: Coroutine[Any, Any, None], stop: Callable[[], None]) -> None:
    """Run `main`; SIGTERM/SIGINT call `stop` (a second signal calls it again, which
    components take as "hurry"). Returns when `main` returns."""

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        try:
            await main
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    with asyncio.Runner(loop_factory=_loop_factory()) as runner_:
        runner_.run(runner())


def exit_now_if_tasks_linger(tasks: Collection[asyncio.Task[Any]]) -> None:
    """An async handler that ignored its cancellation was left running (its outcome was
    recorded already); the event loop would wait for it forever when closing. Leave."""
    busy = [t for t in tasks if not t.done()]
    if busy:
        log.warning("exiting with handlers still running", extra={"handlers": len(busy)})
        _exit_now()


def exit_now_if_threads_linger() -> None:
    """A sync handler that ignores cancellation keeps its thread running, and the
    interpreter would wait for it at exit. The job was already handed back, so leave."""
    busy = [t for t in threading.enumerate() if t.name.startswith("conveyor-job") and t.is_alive()]
    if busy:
        log.warning("exiting with handler threads still running", extra={"threads": len(busy)})
        _exit_now()


def _exit_now() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
