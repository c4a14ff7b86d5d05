"""Resizing a running worker: every second, the concurrency an operator asked for (for
this worker, or for one of its queues: conveyor.store.concurrency) is read and applied.

Growing lets the fetch loop start more jobs at once right away; shrinking starts no new
job until fewer than the new size run (running jobs finish as they would). The value is
bounded by `max_concurrency`; with nothing asked, the worker runs the concurrency it was
started with.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from conveyor.redis_errors import STORE_ERRORS
from conveyor.store.concurrency import ConcurrencyStore

log = logging.getLogger("conveyor.worker")

RESIZE_CHECK_SECONDS = 1.0


class ConcurrencyWatcher:
    def __init__(
        self,
        store: ConcurrencyStore,
        worker_id: str,
        queues: Sequence[str],
        *,
        configured: int,
        maximum: int,
        current: Callable[[], int],
        apply: Callable[[int], Awaitable[None]],
        interval_seconds: float = RESIZE_CHECK_SECONDS,
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.queues = list(queues)
        self.configured = configured
        self.maximum = maximum
        self.current = current
        self.apply = apply
        self.interval_seconds = interval_seconds

    def target(self, desired: int | None) -> int:
        """The concurrency to run: what was asked, bounded by the maximum, else the one
        the worker started with."""
        return self.configured if desired is None else max(1, min(desired, self.maximum))

    async def check(self) -> None:
        """Read what is asked now and apply it when it differs from the current size."""
        desired = await self.store.desired(self.worker_id, self.queues)
        size = self.target(desired)
        if size == self.current():
            return
        if desired is not None and desired > self.maximum:
            log.warning(
                "concurrency asked above max_concurrency; using the maximum",
                extra={"worker": self.worker_id, "asked": desired, "max": self.maximum},
            )
        await self.apply(size)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            try:
                await self.check()
            except STORE_ERRORS as exc:
                log.warning("reading the asked concurrency failed", extra={"error": str(exc)})
