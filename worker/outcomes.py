"""Outcome accounting: how this worker's jobs ended, counted and logged.

The `processed` and `failed` totals are what the heartbeat advertises; the metrics
(`conveyor.metrics.WorkerMetrics`) are counted by the status the finisher returns for each
attempt (`account`), and by the claim result for jobs that ended without running (poison,
canceled while their worker was gone: `account_unrun`).
"""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio import Redis

from conveyor.metrics import JobSeries, WorkerMetrics
from conveyor.redis_errors import STORE_ERRORS
from conveyor.store.consumer import Delivery
from conveyor.store.keys import Keys

log = logging.getLogger("conveyor.worker")

_OUTCOME_LOG = {
    "completed": ("job completed", logging.INFO),
    "retrying": ("job failed; it will be retried", logging.WARNING),
    "failed": ("job failed", logging.ERROR),
    "canceled": ("job canceled", logging.INFO),
    "pending": ("job returned to the queue", logging.INFO),
    "stale": ("job outcome discarded: the attempt was no longer this worker's", logging.WARNING),
    "unrecorded": ("job outcome not recorded; the job will be reclaimed", logging.ERROR),
}


class Outcomes:
    """The ends of this worker's jobs: totals since start, metrics and one log line each."""

    def __init__(self, metrics: WorkerMetrics, redis: Redis, keys: Keys) -> None:
        self.metrics = metrics
        self.redis = redis  # reads the types of jobs that ended without running
        self.keys = keys
        self.processed = 0
        self.failed = 0

    def account(self, status: str, ran: float, error: str | None, series: JobSeries) -> None:
        """One attempt's end, by the status the finisher wrote: counted, and logged."""
        extra: dict[str, Any] = {"status": status, "duration_ms": round(ran * 1000, 2)}
        if error:
            extra["error"] = error
        if status == "completed":
            self.processed += 1
            series.completed.inc()
            series.duration.observe(ran)
        elif status == "retrying":
            self.failed += 1
            series.retried.inc()
            series.duration.observe(ran)
        elif status == "failed":
            self.failed += 1
            series.failed.inc()
            series.duration.observe(ran)
        elif status == "canceled":
            series.canceled.inc()
            series.duration.observe(ran)
        elif status == "pending":
            self.metrics.returned.inc()
        elif status == "stale":
            self.metrics.stale.inc()
        message, level = _OUTCOME_LOG.get(status, (f"job {status}", logging.INFO))
        log.log(level, message, extra=extra)

    async def account_unrun(
        self, deliveries: list[Delivery], poisoned: list[str], canceled: list[str]
    ) -> None:
        """Count jobs the claim script ended without running them; their type is read
        from their hash (a rare path: one extra round trip)."""
        self.failed += len(poisoned)
        queue_of = {d.job_id: d.queue for d in deliveries}
        ids = [*poisoned, *canceled]
        types: list[Any] = [None] * len(ids)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hget(self.keys.queue(queue_of[job_id]).job(job_id), "type")
                types = await pipe.execute()
        except STORE_ERRORS as exc:
            log.warning("could not read the types of ended jobs", extra={"error": str(exc)})
        for i, (job_id, job_type) in enumerate(zip(ids, types, strict=True)):
            name = job_type.decode() if isinstance(job_type, bytes) else "unknown"
            series = self.metrics.job(queue_of[job_id], name)
            if i < len(poisoned):
                self.metrics.poison.inc()
                series.failed.inc()
            else:
                series.canceled.inc()
