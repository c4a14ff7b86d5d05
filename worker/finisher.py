"""Writes the end of attempts to Redis in batches.

Attempts that end close together are finished by one pipelined round trip (one script
per queue and kind), which keeps Redis round trips per job low under load and adds no
delay at idle: a batch is whatever is waiting when the previous write returns.
"""

from __future__ import annotations

import asyncio
import logging
import random

from conveyor.redis_errors import store_not_serving
from conveyor.store.consumer import Completion, ConsumerStore, Failure
from conveyor.worker.executor import Finish, Requeue

log = logging.getLogger("conveyor.worker")

MAX_BATCH = 256


class Finisher:
    def __init__(self, store: ConsumerStore, schedule_channel: str, give_up_after: float) -> None:
        self.store = store
        self.schedule_channel = schedule_channel
        # After this long without reaching Redis the lease is gone anyway: the job will be
        # reclaimed and run again, so keeping the record helps nobody.
        self.give_up_after = give_up_after
        self._queue: asyncio.Queue[tuple[Finish, asyncio.Future[str]]] = asyncio.Queue()
        self.stale = 0

    def put(self, item: Finish) -> asyncio.Future[str]:
        """Queue `item` for the next write; the future is the job's status after it
        ('stale' when the attempt was no longer ours). A plain future, so a caller can
        shield it without the task that shielding a coroutine would create per job."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))  # unbounded: never waits
        return future

    async def submit(self, item: Finish) -> str:
        """`put`, then wait for the status."""
        return await self.put(item)

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write(batch)

    async def drain(self) -> None:
        """Write whatever is queued (used at shutdown after the run task is cancelled)."""
        batch = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if batch:
            await self._write(batch)

    async def _write(self, batch: list[tuple[Finish, asyncio.Future[str]]]) -> None:
        completions = [i for i, _ in batch if isinstance(i, Completion)]
        failures = [i for i, _ in batch if isinstance(i, Failure)]
        requeues = [i.job for i, _ in batch if isinstance(i, Requeue)]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.give_up_after
        delay = 0.05
        while True:
            try:
                outcome = await self.store.finish(
                    completions, failures, requeues, schedule_channel=self.schedule_channel
                )
                break
            except Exception as exc:
                if not store_not_serving(exc):
                    # A script error: the attempts stay in the PEL and are reclaimed later.
                    log.exception("could not record finished jobs", extra={"error": str(exc)})
                    _unrecorded(batch)
                    return
                if loop.time() + delay > deadline:
                    log.error(
                        "giving up recording finished jobs; they will be reclaimed",
                        extra={"error": str(exc), "jobs": len(batch)},
                    )
                    _unrecorded(batch)
                    return
                log.warning("redis unavailable while finishing jobs", extra={"error": str(exc)})
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)
        for item, future in batch:
            status = outcome.get(item.job.job_id, "stale")
            if status == "stale":
                self.stale += 1
            if not future.done():
                future.set_result(status)


def _unrecorded(batch: list[tuple[Finish, asyncio.Future[str]]]) -> None:
    """The batch was not recorded: its attempts stay pending and are reclaimed later."""
    for _, future in batch:
        if not future.done():
            future.set_result("unrecorded")
