"""The heartbeat: this worker advertised in Redis (`conveyor.store.workers.WorkerRegistry`).

Every `heartbeat_seconds` it rewrites the worker's hash (host, pid, queues, concurrency,
jobs in flight, the processed and failed totals) and renews its expiry, which is what
`GET /workers`, `conveyor workers` and the dashboard list as live. A stopping worker
removes its entry.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable

from conveyor.redis_errors import STORE_ERRORS
from conveyor.store.workers import WorkerRegistry
from conveyor.worker.outcomes import Outcomes
from conveyor.worker.probes import Health

log = logging.getLogger("conveyor.worker")


class Heartbeat:
    def __init__(
        self,
        heartbeats: WorkerRegistry,
        worker_id: str,
        *,
        queues: list[str],
        concurrency: int,
        in_flight: Callable[[], int],
        outcomes: Outcomes,
        interval_seconds: float,
        health: Health,
    ) -> None:
        self.heartbeats = heartbeats
        self.worker_id = worker_id
        self.queues = queues
        self.concurrency = concurrency
        self.in_flight = in_flight
        self.outcomes = outcomes
        self.interval_seconds = interval_seconds
        self.health = health
        self.started_at = time.time()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            try:
                await self.beat()
            except STORE_ERRORS as exc:
                self.health.redis_failed()
                log.warning("heartbeat failed", extra={"error": str(exc)})

    async def beat(self) -> None:
        info: dict[str, str | int | float] = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": ",".join(self.queues),
            "concurrency": self.concurrency,
            "in_flight": self.in_flight(),
            "processed": self.outcomes.processed,
            "failed": self.outcomes.failed,
            "started_at": int(self.started_at * 1000),
        }
        await self.heartbeats.beat(self.worker_id, info, self.interval_seconds)
        self.health.redis_succeeded()

    async def remove(self) -> None:
        """Take this worker off the list of live ones (at shutdown)."""
        try:
            await self.heartbeats.remove(self.worker_id)
        except STORE_ERRORS as exc:
            log.warning("could not remove the heartbeat", extra={"error": str(exc)})
