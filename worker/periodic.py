"""Firing periodic schedules, one pass at a time, from the scheduler's loop.

A pass reads the schedules whose next fire time has come (at most `DUE_BATCH`), plans each
one's jobs from Redis TIME (`plan_fires`), creates them, then records the fire with a
compare-and-set on the schedule's next_run_at and version (schedule_fired.lua).

Exactly once without locks: a fire time's job id is derived from the schedule's name and
that time (`conveyor.schedules.fire_job_id`), and the enqueue script creates nothing for an
id that exists. Two replicas planning the same fire create one job; a scheduler killed
between the create and the compare-and-set leaves next_run_at where it was, and the next
pass (its own after a restart, or another replica's) plans the same fire times again,
finds their jobs, and advances.

Fire times are late or missed. One that comes due while a scheduler runs is picked up
within a pass (at most `MAX_SLEEP`, the scheduler's longest wait), and a fire time up to
`grace_ms` old is late: it gets its job. Older ones were missed, while no scheduler ran:
`catch_up: one` gives all of them together one job (for the latest of them), `none`
gives them none.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from cronsim import CronSimError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from conveyor.errors import ConveyorError, JobNotFound
from conveyor.metrics import SchedulerMetrics
from conveyor.schedules import CatchUp, Overlap, ScheduleSpec, fire_job_id
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.store.schedules import Advance, Schedule, ScheduleStore, redis_now_ms
from conveyor.values import NewJob

log = logging.getLogger("conveyor.scheduler")

DUE_BATCH = 100  # schedules one pass handles at most; the rest come in the next pass
MAX_LATE_FIRES = 60  # late fire times of one schedule handled in one pass
MAX_COUNTED = 1000  # missed fire times counted one by one per pass (for the metric)
RETRY_MS = 1000  # how soon a schedule whose jobs could not be created is tried again


@dataclass(frozen=True, slots=True)
class Plan:
    """What one pass does about one schedule's due fire times."""

    fires: list[int]  # fire times (epoch ms) that get a job, oldest first
    missed: int  # fire times dropped under catch_up (counted up to MAX_COUNTED)
    next_run_at: int  # the first fire time the pass leaves for later


def plan_fires(spec: ScheduleSpec, next_ms: int, now_ms: int, grace_ms: int) -> Plan:
    """The fire times from `next_ms` (a fire time) up to `now_ms` (Redis TIME): late ones
    (at most `grace_ms` old) all fire, missed ones as `catch_up` says. Bounded work: the
    missed ones are jumped over, not walked, and at most `MAX_LATE_FIRES` late ones are
    handled (next_run_at then stays at the first one left, due at once)."""
    if next_ms > now_ms:
        return Plan([], 0, next_ms)
    fires: list[int] = []
    missed = 0
    late_from = now_ms - grace_ms
    first_late = next_ms
    if next_ms < late_from:
        latest_missed = spec.latest_before(late_from)
        missed = _count(spec, next_ms, latest_missed)
        if spec.catch_up is CatchUp.ONE:
            fires.append(latest_missed)
            missed -= 1
        first_late = spec.next_after(latest_missed)
    t = first_late
    while t <= now_ms and len(fires) < MAX_LATE_FIRES:
        fires.append(t)
        t = spec.next_after(t)
    return Plan(fires, missed, t)


def _count(spec: ScheduleSpec, first: int, last: int) -> int:
    """Fire times from `first` to `last` (both fire times), counted up to MAX_COUNTED."""
    if spec.every_seconds is not None:
        return min((last - first) // (spec.every_seconds * 1000) + 1, MAX_COUNTED)
    count, t = 1, first
    while t < last and count < MAX_COUNTED:
        t = spec.next_after(t)
        count += 1
    return count


class Periodic:
    """The periodic schedules' part of a scheduler pass (`tick`)."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        producer: ProducerStore,
        *,
        grace_ms: int,
        metrics: SchedulerMetrics,
    ) -> None:
        self.redis = redis
        self.store = ScheduleStore(redis, keys)
        self.producer = producer
        self.grace_ms = grace_ms
        self.metrics = metrics
        self.fired = 0

    async def tick(self, estimate_ms: int) -> int | None:
        """Fire what is due by `estimate_ms` (the scheduler's estimate of Redis time: it
        only picks candidates; the plan is made from Redis TIME, read once). Returns the
        next fire time known (epoch ms; None: no schedule)."""
        earliest = await self.store.earliest(DUE_BATCH)
        names = [name for name, due in earliest if due <= estimate_ms]
        if not names:
            return earliest[0][1] if earliest else None
        schedules = await self.store.read(names)
        leftovers = [n for n, s in zip(names, schedules, strict=True) if s is None]
        if leftovers:  # only those whose hash is gone go (the script checks)
            await self.store.drop_leftovers(leftovers)
        now = await redis_now_ms(self.redis)
        planned = [(s, self._plan(s, now)) for s in schedules if s is not None]
        present = [s for s, p in planned if p is not None]
        plans = [p for _, p in planned if p is not None]
        handled = await asyncio.gather(
            *(self._fire(s, p, now) for s, p in zip(present, plans, strict=True))
        )
        advances = [a for a in handled if a is not None]
        if advances:
            await self.store.fired(advances)
        if len(names) == DUE_BATCH:
            return now  # more may be due: the next pass starts at once
        # When the next pass is due: the earliest fire time of those not due, of those just
        # advanced, of those not yet due by Redis TIME; a failed one is tried again soon.
        later = [due for _, due in earliest[len(names) :]]
        later += [a.next_run_at for a in advances]
        later += [
            s.next_run_at if s.next_run_at > now else now + RETRY_MS
            for s, a in zip(present, handled, strict=True)
            if a is None
        ]
        return min(later) if later else None

    def _plan(self, schedule: Schedule, now: int) -> Plan | None:
        """`plan_fires` for one schedule; None (logged) when its stored timing cannot be
        evaluated (a hash edited by hand): the others are fired all the same."""
        try:
            return plan_fires(schedule.spec, schedule.next_run_at, now, self.grace_ms)
        except (CronSimError, ValueError, KeyError, StopIteration, OverflowError) as exc:
            log.warning(
                "schedule timing cannot be evaluated; skipped",
                extra={"schedule": schedule.spec.name, "error": repr(exc)},
            )
            return None

    async def _fire(self, schedule: Schedule, plan: Plan, now: int) -> Advance | None:
        """Create the plan's jobs; the advance to record, None when nothing is to be
        recorded now (not due by Redis TIME, or the create failed: the next pass tries
        again)."""
        spec = schedule.spec
        if plan.next_run_at == schedule.next_run_at:
            return None
        fires = plan.fires
        skipped = 0
        if fires and spec.overlap is Overlap.SKIP:  # one job at most, and only when free
            skipped, fires = len(fires) - 1, fires[-1:]
            if not await self._may_start(schedule, fires[0]):
                skipped, fires = skipped + 1, []
        jobs = [self._job(spec, t) for t in fires]
        if jobs:
            try:
                await self.producer.create(jobs)
            except (ConveyorError, RedisError) as exc:
                log.warning(
                    "schedule could not create its jobs; trying again next pass",
                    extra={"schedule": spec.name, "error": str(exc)},
                )
                return None
        self.fired += len(jobs)
        self.metrics.schedule_fires.inc(len(jobs))
        for t in fires:
            self.metrics.schedule_lag.observe(max(now - t, 0) / 1000)
        if plan.missed:
            self.metrics.schedule_skipped.labels("missed").inc(plan.missed)
        if skipped:
            self.metrics.schedule_skipped.labels("overlap").inc(skipped)
        if fires or plan.missed or skipped:
            log.info(
                "schedule fired",
                extra={
                    "schedule": spec.name,
                    "jobs": len(jobs),
                    "missed": plan.missed,
                    "skipped_overlap": skipped,
                },
            )
        return Advance(
            name=spec.name,
            planned_next=schedule.next_run_at,
            version=schedule.version,
            next_run_at=plan.next_run_at,
            last_run_at=fires[-1] if fires else None,
            last_job_id=jobs[-1].id if jobs else None,
        )

    async def _may_start(self, schedule: Schedule, fire_ms: int) -> bool:
        """`overlap: skip`: whether a job may start for `fire_ms`: its job exists already
        (a fire being repeated), or the schedule's last job is finished or gone."""
        spec = schedule.spec
        try:
            await self.producer.get(fire_job_id(spec.name, fire_ms), spec.queue)
            return True
        except JobNotFound:
            pass
        if schedule.last_job_id is None:
            return True
        try:
            last = await self.producer.get(schedule.last_job_id)
        except JobNotFound:
            return True
        return last.status.terminal

    @staticmethod
    def _job(spec: ScheduleSpec, fire_ms: int) -> NewJob:
        return NewJob(
            id=fire_job_id(spec.name, fire_ms),
            type=spec.type,
            queue=spec.queue,
            payload=spec.payload,
            max_attempts=spec.max_attempts,
            timeout_ms=spec.timeout_ms,
            schedule=spec.name,
        )
