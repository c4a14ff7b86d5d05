"""Leases: keep our running jobs' stream entries fresh, and take over those of dead workers.

A job's lease is its entry in the group's PEL. Its idle time grows until the owner renews
it; once it is idle longer than the lease, any live worker may take it over (XAUTOCLAIM)
and run the job again. The renew script checks that we still own the entry first.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence

from conveyor.redis_errors import STORE_ERRORS
from conveyor.store.consumer import ConsumerStore, Delivery
from conveyor.worker.executor import Attempt, StopReason

log = logging.getLogger("conveyor.worker")


class LeaseKeeper:
    """Renews every held entry each `interval` (a third of the lease)."""

    def __init__(
        self,
        store: ConsumerStore,
        attempts: dict[str, Attempt],
        backlog: list[Delivery],
        interval: float,
        deferred: list[Delivery] | None = None,
    ) -> None:
        self.store = store
        self.attempts = attempts
        self.backlog = backlog
        self.deferred = deferred if deferred is not None else []  # see worker.last_chance
        self.interval = interval
        self.lost = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.renew_once()
            except STORE_ERRORS as exc:
                log.warning("lease renewal failed", extra={"error": str(exc)})

    async def renew_once(self) -> None:
        held: list[object] = [a.job for a in self.attempts.values() if a.stop_reason is None]
        held += self.backlog
        held += self.deferred
        if not held:
            return
        words = await self.store.renew(held)  # type: ignore[arg-type]
        for job_id, word in words.items():
            attempt = self.attempts.get(job_id)
            if word == "lost":
                self.lost += 1
                if attempt is not None:
                    log.warning(
                        "lease lost; another worker owns the job now", extra=attempt.log_fields()
                    )
                    attempt.stop(StopReason.LOST)
                else:
                    self.backlog[:] = [d for d in self.backlog if d.job_id != job_id]
                    self.deferred[:] = [d for d in self.deferred if d.job_id != job_id]
            elif word == "cancel" and attempt is not None:
                attempt.stop(StopReason.CANCEL)


class Reclaimer:
    """Takes over entries idle longer than the lease and queues them in the worker's
    backlog, which the fetch loop serves before reading new entries. The backlog holds at
    most `limit` entries (renewed like running jobs), so even a saturated worker keeps
    rescuing the jobs of dead workers."""

    def __init__(
        self,
        store: ConsumerStore,
        queues: Sequence[str],
        lease_ms: int,
        backlog: list[Delivery],
        limit: int,
        interval: float,
        wake: Callable[[], None],
    ) -> None:
        self.store = store
        self.queues = list(queues)
        self.lease_ms = lease_ms
        self.backlog = backlog
        self.limit = limit
        self.interval = interval
        self.wake = wake
        self.reclaimed = 0
        # Entry ids of reclaimed deliveries not started yet: the worker counts those it
        # runs (the recovered metric) and forgets them.
        self.entries: set[str] = set()
        self._rounds = 0

    async def run(self) -> None:
        while True:
            # Jitter keeps the workers of a deployment from scanning in lockstep.
            await asyncio.sleep(self.interval * (0.75 + random.random() / 2))
            try:
                await self.reclaim_once()
                self._rounds += 1
                if self._rounds % 20 == 0:
                    await self.release_dead_consumers()
            except STORE_ERRORS as exc:
                log.warning("reclaim failed", extra={"error": str(exc)})

    async def reclaim_once(self) -> int:
        taken = 0
        for queue in self.queues:
            room = self.limit - len(self.backlog)
            if room <= 0:
                break
            deliveries = await self.store.autoclaim(queue, self.lease_ms, room)
            if deliveries:
                taken += len(deliveries)
                log.info(
                    "reclaiming jobs of a worker that stopped renewing its lease",
                    extra={"queue": queue, "jobs": len(deliveries)},
                )
                self.backlog.extend(deliveries)
                self.entries.update(d.entry_id for d in deliveries)
        if taken:
            self.reclaimed += taken
            self.wake()
        return taken

    async def release_dead_consumers(self) -> None:
        idle_ms = max(self.lease_ms * 3, 60_000)
        for queue in self.queues:
            released = await self.store.release_idle_consumers(
                queue, idle_ms, keep={self.store.consumer}
            )
            if released:
                log.info(
                    "removed consumers of gone workers",
                    extra={"queue": queue, "consumers": released},
                )
