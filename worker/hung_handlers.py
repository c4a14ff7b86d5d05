"""Hung handlers: attempts whose handler ignored the cancellation of its timeout.

An async handler that swallows `CancelledError` keeps running after its timeout fired.
Python cannot stop it, but its job must not wait for it: once it is still running
`ABANDON_AFTER_SECONDS` past its deadline, a timed-out failure is written for it, its
slot is freed and the handler is left running on its own, detached from the worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from conveyor.logs import log_context
from conveyor.metrics import WorkerMetrics
from conveyor.worker.executor import Attempt, Executor
from conveyor.worker.finisher import Finisher
from conveyor.worker.last_chance import LastChance
from conveyor.worker.outcomes import Outcomes

log = logging.getLogger("conveyor.worker")

# An attempt still running this long after its timeout fired ignored the cancellation (an
# async handler swallowing CancelledError): its outcome is written for it and it is left
# running, detached from the worker's slots.
ABANDON_AFTER_SECONDS = 2.0
REAP_EVERY_SECONDS = 0.5


class HungHandlerReaper:
    """Every `REAP_EVERY_SECONDS`, abandons the attempts overdue by `ABANDON_AFTER_SECONDS`.

    `attempts` and `abandoned` are the worker's own collections, changed in place: an
    abandoned attempt leaves `attempts`, and its task stays in `abandoned` until it ends.
    """

    def __init__(
        self,
        attempts: dict[str, Attempt],
        abandoned: set[asyncio.Task[Any]],
        *,
        executor: Executor,
        finisher: Finisher,
        last_chance: LastChance,
        outcomes: Outcomes,
        metrics: WorkerMetrics,
        slot_freed: Callable[[], None],
    ) -> None:
        self.attempts = attempts
        self.abandoned = abandoned
        self.executor = executor
        self.finisher = finisher
        self.last_chance = last_chance
        self.outcomes = outcomes
        self.metrics = metrics
        self.slot_freed = slot_freed

    async def run(self) -> None:
        while True:
            await asyncio.sleep(REAP_EVERY_SECONDS)
            late = time.monotonic() - ABANDON_AFTER_SECONDS
            for attempt in list(self.attempts.values()):
                if attempt.deadline is not None and attempt.deadline < late:
                    await self.abandon(attempt)

    async def abandon(self, attempt: Attempt) -> None:
        """Write a timed-out failure for an attempt whose handler ignored its cancellation,
        free its slot, and leave the handler running on its own: its late result, if it
        ever comes, is dropped (the fencing token would refuse it anyway)."""
        job = attempt.job
        if attempt.abandoned or attempt.task is None or attempt.task.done():
            return
        attempt.abandoned = True
        self.abandoned.add(attempt.task)
        attempt.task.add_done_callback(self.abandoned.discard)
        if self.attempts.get(job.job_id) is attempt:
            del self.attempts[job.job_id]
        self.last_chance.ended(attempt)
        self.slot_freed()
        failure = self.executor.ignored_timeout(attempt)
        with log_context(**attempt.log_fields()):
            log.error(
                "job timed out and its handler ignored the cancellation; it is left running",
                extra={"error": failure.error},
            )
            try:
                status = await self.finisher.submit(failure)
            except Exception:
                log.exception("could not record the timed-out attempt; it will be reclaimed")
                return
            series = self.metrics.job(job.queue, job.type)
            self.outcomes.account(status, time.monotonic() - attempt.started, failure.error, series)
