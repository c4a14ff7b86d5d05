"""A job on its last chance before the poison bound runs alone.

A handler that takes its worker process down (a segfault in a C extension, the kernel's
OOM killer, `os._exit`) loses its attempt every time, and with it the attempts of every
job the process had claimed. Those jobs are taken over together with the culprit, so
without care they could share its fate and reach `max_deliveries` lost attempts too:
failed as poison although nothing was wrong with them.

So a job that has already lost `max_deliveries - 1` attempts (one more loss and it is
poison) is claimed only when this worker holds no other attempt, and no other job is
claimed until it has ended. Ordinary claims pass `defer_last_chance`: the claim script
then leaves such a job untouched and hands its delivery back; the worker keeps it here
(its entry stays in this consumer's PEL and the lease keeper renews it like the backlog),
stops taking new work, and claims it on its own once its running jobs have ended. A poison
job thus fails after exactly `max_deliveries` deliveries, alone, and the jobs lost beside
it earlier get their last chance apart from it. Only the last chance is isolated: after
ordinary crashes (a node drained, a deploy) reclaimed jobs keep full concurrency.

Deferring writes nothing, so a worker that dies while holding deferred deliveries costs
their jobs no attempt: they are taken over like any unstarted delivery.
"""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.store.consumer import Delivery
from conveyor.worker.executor import Attempt


class LastChance:
    def __init__(self) -> None:
        # Claimed later, one at a time, in this order. Changed in place only: the lease
        # keeper renews what this list holds.
        self.deferred: list[Delivery] = []
        self.running: Attempt | None = None  # the attempt running alone, if any

    @property
    def active(self) -> bool:
        """A job runs alone or waits to: claim no other job meanwhile."""
        return bool(self.deferred) or self.running is not None

    def defer(self, deliveries: list[Delivery]) -> None:
        held = {(d.queue, d.entry_id) for d in self.deferred}
        for d in deliveries:
            if (d.queue, d.entry_id) not in held:
                held.add((d.queue, d.entry_id))
                self.deferred.append(d)

    def next_up(self, attempts: Mapping[str, Attempt]) -> Delivery | None:
        """The delivery to claim alone now, if its turn has come: nothing else runs here."""
        if self.deferred and self.running is None and not attempts:
            return self.deferred[0]
        return None

    def claimed(self, delivery: Delivery, attempt: Attempt | None) -> None:
        """`delivery` was claimed on its own: `attempt` runs alone now (None: the claim
        found nothing to start, e.g. the job was canceled meanwhile)."""
        self.forget(delivery.job_id)
        self.running = attempt

    def forget(self, job_id: str) -> None:
        self.deferred[:] = [d for d in self.deferred if d.job_id != job_id]

    def ended(self, attempt: Attempt) -> None:
        if self.running is attempt:
            self.running = None
