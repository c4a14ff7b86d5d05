"""The scheduler process: moves due scheduled and retrying jobs onto their streams, and
fires periodic schedules (worker/periodic.py, one call per pass).

Safe to run as several replicas: the promote script's ZREM is the claim, and "due" is
judged by Redis TIME inside the script, so replicas with skewed clocks never promote a job
early or twice. It sleeps until the earliest due time it knows of, and wakes at once when a
script announces an earlier one on the schedule channel, so at idle a due job waits only
for one round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from conveyor.metrics import SchedulerMetrics, process_registry
from conveyor.redis_errors import STORE_ERRORS
from conveyor.store import id_index
from conveyor.store.keys import Keys
from conveyor.store.limits import LimitsStore
from conveyor.store.producer import ProducerStore
from conveyor.store.registry import QueueRegistry
from conveyor.store.scheduling import (
    PromoteResult,
    SchedulerStore,
    expire_queues,
    promote_queues,
)
from conveyor.worker.periodic import Periodic
from conveyor.worker.probes import Health

log = logging.getLogger("conveyor.scheduler")

BATCH = 200  # jobs per promote script call
MAX_SLEEP = 1.0  # upper bound on a wait, covering new queues and missed messages
EXPIRE_EVERY = 30.0  # seconds between passes that drop expired index entries
EXPIRE_BATCH = 1000
# Seconds between sweeps of the concurrency limits: a slot of a dead worker is freed when
# its lease ends, and its held jobs start within this much more (store/limits.py).
LIMITS_EVERY = 1.0
CLOCK_EVERY = 10.0  # seconds without a promote reply before Redis TIME is read again
QUEUES_PER_TRIP = 500  # queues whose due jobs one `promote_queues` call handles
MAX_ROUNDS = 5  # full batches of one queue per pass, before the pass moves on


class Scheduler:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        result_ttl_seconds: int,
        metrics: SchedulerMetrics | None = None,
        health: Health | None = None,
        schedule_grace_seconds: int = 10,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.store = SchedulerStore(redis, keys, ttl_ms=result_ttl_seconds * 1000)
        self.ttl_ms = result_ttl_seconds * 1000
        self.limits = LimitsStore(redis, keys)
        self.queues = ProducerStore(redis, keys, result_ttl_seconds=result_ttl_seconds)
        self.registry = QueueRegistry(redis, keys)
        self.offset_ms = 0  # Redis TIME minus our clock: from promote replies and TIME
        self._offset_learned_at = -math.inf  # time.monotonic() of the last lesson
        self.promoted = 0
        self._stopping = asyncio.Event()
        self._next_expire = 0.0
        self._next_limits = 0.0
        self.metrics = metrics or SchedulerMetrics(process_registry())
        # A pass runs at least every MAX_SLEEP: a few of them make the readiness window.
        self.health = health or Health(3 * MAX_SLEEP)
        self.periodic = Periodic(
            redis,
            keys,
            self.queues,
            grace_ms=schedule_grace_seconds * 1000,
            metrics=self.metrics,
        )

    def request_stop(self) -> None:
        self._stopping.set()

    def redis_now_ms(self) -> int:
        return int(time.time() * 1000) + self.offset_ms

    async def run(self) -> None:
        log.info("scheduler started")
        backfill = asyncio.create_task(self._backfill_id_index(), name="id-index-backfill")
        try:
            await self._run()
        finally:
            backfill.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await backfill

    async def _backfill_id_index(self) -> None:
        """Once per prefix: index the jobs created before the id index existed (see
        `id_index.backfill`); on an error, the next scheduler start tries again."""
        try:
            if await id_index.backfilled(self.redis, self.keys):
                return
            written = await id_index.backfill(self.redis, self.keys, await self.queues.queues())
            log.info("id index backfilled", extra={"jobs": written})
        except (RedisError, OSError) as exc:
            log.warning("id index backfill failed", extra={"error": str(exc)})

    async def _run(self) -> None:
        delay = 0.1
        while not self._stopping.is_set():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.keys.schedule_channel)
                while not self._stopping.is_set():
                    wait = await self.tick()
                    self.health.redis_succeeded()
                    await self._wait(pubsub, wait)
                    delay = 0.1
            except STORE_ERRORS as exc:
                self.health.redis_failed()
                log.warning("scheduler lost redis; retrying", extra={"error": str(exc)})
                await self._sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(*STORE_ERRORS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
        log.info("scheduler stopped", extra={"promoted": self.promoted})

    async def tick(self) -> float:
        """One pass over every queue; returns how long to sleep before the next.

        The queues are handled `QUEUES_PER_TRIP` at a time, each group in at most three
        round trips (`promote_queues`); a queue that had a full batch due is handled again
        in the same pass, at most `MAX_ROUNDS` times, so a pass stays bounded however many jobs are
        due (what is left waits for the next pass, which then starts at once).
        """
        if time.monotonic() - self._offset_learned_at >= CLOCK_EVERY:
            await self._read_clock()
        queues = await self.queues.queues()
        next_due = await self._promote_all(queues)
        if time.monotonic() >= self._next_limits:
            await self.sweep_limits(queues)
            self._next_limits = time.monotonic() + LIMITS_EVERY
        fire = await self.periodic.tick(self.redis_now_ms())
        if fire is not None and (next_due is None or fire < next_due):
            next_due = fire
        if time.monotonic() >= self._next_expire:
            await self.expire_all()
            self._next_expire = time.monotonic() + EXPIRE_EVERY
        if next_due is None:
            return MAX_SLEEP
        return min(max((next_due - self.redis_now_ms() + 1) / 1000, 0.0), MAX_SLEEP)

    async def _promote_all(self, queues: list[str]) -> int | None:
        """The promote part of a pass (see `tick`): the earliest due time left, if any."""
        next_due: int | None = None
        for start in range(0, len(queues), QUEUES_PER_TRIP):
            todo = queues[start : start + QUEUES_PER_TRIP]
            for _ in range(MAX_ROUNDS):
                passes = await promote_queues(
                    self.redis, self.keys, todo, self.redis_now_ms(), BATCH, ttl_ms=self.ttl_ms
                )
                todo = []
                for p in passes:
                    self._record(p.queue, p.result)
                    if p.more:
                        todo.append(p.queue)
                    elif (due := p.result.next_due_ms) is not None and (
                        next_due is None or due < next_due
                    ):
                        next_due = due
                if not todo:
                    break
            if todo:  # still due after MAX_ROUNDS batches: come back at once
                next_due = self.redis_now_ms()
        return next_due

    async def _read_clock(self) -> None:
        """Learn Redis TIME minus our clock from Redis itself. The due check of a pass
        runs on our clock corrected by this offset, and only promote replies (when
        something was due) carry Redis TIME: without this read, a scheduler whose clock
        runs behind would never find anything due, and so never learn that it is."""
        seconds, micros = await self.redis.time()
        self._learn_offset(int(seconds) * 1000 + int(micros) // 1000)

    def _learn_offset(self, redis_now_ms: int) -> None:
        self.offset_ms = redis_now_ms - int(time.time() * 1000)
        self._offset_learned_at = time.monotonic()

    def _record(self, queue: str, result: PromoteResult) -> None:
        if result.promoted:  # only a script's reply carries Redis TIME
            self._learn_offset(result.now_ms)
        self.promoted += result.promoted
        if result.expired:
            self.metrics.expired.labels(queue).inc(result.expired)
            log.info("due jobs expired", extra={"queue": queue, "count": result.expired})
        if result.promoted:
            self.metrics.promoted.labels(queue).inc(result.promoted)
            if log.isEnabledFor(logging.DEBUG):
                for job_id, correlation_id in result.jobs:
                    log.debug(
                        "job promoted",
                        extra={"job_id": job_id, "queue": queue, "correlation_id": correlation_id},
                    )

    async def sweep_limits(self, queues: list[str]) -> None:
        """Free the concurrency slots whose lease ran out and start the jobs held for
        them, `QUEUES_PER_TRIP` queues per round trip."""
        for start in range(0, len(queues), QUEUES_PER_TRIP):
            await self.limits.sweep(queues[start : start + QUEUES_PER_TRIP])

    async def expire_all(self) -> None:
        """Drop expired index entries of every queue, then remove the queues that hold no
        job from the registry (`QueueRegistry.retire_drained`): a few round trips per
        `QUEUES_PER_TRIP` queues."""
        queues = await self.queues.queues()
        for start in range(0, len(queues), QUEUES_PER_TRIP):
            await expire_queues(
                self.redis, self.keys, queues[start : start + QUEUES_PER_TRIP], EXPIRE_BATCH
            )
        retired = await self.registry.retire_drained(queues)
        if retired:
            log.info("queues without jobs left the registry", extra={"queues": len(retired)})

    async def _wait(self, pubsub: PubSub, seconds: float) -> None:
        if seconds <= 0 or self._stopping.is_set():
            return
        # A message means some queue has a new earliest due time: run a pass at once.
        # Drain further messages without waiting, so a burst costs one pass.
        message = await pubsub.get_message(timeout=seconds)
        while message is not None:
            message = await pubsub.get_message(timeout=0)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
