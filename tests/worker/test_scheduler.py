"""The scheduler against a real Redis: due jobs are promoted once and never early, a newly
scheduled earlier job wakes it, it stops on request, and it drops expired index entries."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from conveyor import codec
from conveyor.states import Status
from conveyor.store.consumer import Completion, ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.store.scripts import scripts
from conveyor.worker.scheduler import MAX_SLEEP, Scheduler
from tests.helpers import seed
from tests.helpers.round_trips import RoundTrips
from tests.helpers.wait import eventually_async
from tests.worker.support import (
    enqueue,
    redis_ms,
    subscribers,
    wait_all,
    wait_status,
)

pytestmark = pytest.mark.anyio


class TickingScheduler(Scheduler):
    """Counts its passes, so a test can act right after one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ticks = 0

    async def tick(self) -> float:
        wait = await super().tick()
        self.ticks += 1
        return wait


async def start(scheduler: Scheduler) -> asyncio.Task[None]:
    return asyncio.create_task(scheduler.run(), name="scheduler-under-test")


async def stop(scheduler: Scheduler, task: asyncio.Task[None]) -> None:
    scheduler.request_stop()
    await asyncio.wait_for(task, 5)


async def test_due_jobs_are_promoted_once_and_never_early(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    due_soon = [await enqueue(producer, "echo", i, delay_seconds=0.3) for i in range(3)]
    later = await enqueue(producer, "echo", "later", delay_seconds=3600)
    scheduler = Scheduler(r, keys, result_ttl_seconds=600)
    task = await start(scheduler)
    try:
        jobs = await wait_all(producer, due_soon, Status.PENDING, timeout=5)
    finally:
        await stop(scheduler, task)
    for job in jobs:
        assert job.run_at is not None
        # updated_at is the Redis TIME at which the promote script ran.
        assert job.updated_at >= job.run_at
        assert job.updated_at - job.run_at < 2000
    assert scheduler.promoted == 3
    q = keys.queue("default")
    assert await r.xlen(q.stream) == 3  # one stream entry per job: promoted once
    entries: Any = await r.xrange(q.stream)
    assert sorted(fields[b"id"].decode() for _, fields in entries) == sorted(due_soon)
    assert (await producer.get(later)).status is Status.SCHEDULED
    assert await r.zrange(q.delayed, 0, -1) == [later.encode()]
    assert await r.zcard(q.index(Status.SCHEDULED)) == 1
    assert await r.zcard(q.index(Status.PENDING)) == 3


async def test_a_job_is_not_promoted_before_it_is_due(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    job_id = await enqueue(producer, "echo", delay_seconds=0.8)
    scheduler = TickingScheduler(r, keys, result_ttl_seconds=600)
    task = await start(scheduler)
    try:
        await eventually_async(lambda: _after(scheduler, 2), what="two passes")
        job = await producer.get(job_id)
        assert job.run_at is not None
        if await redis_ms(r) < job.run_at:
            assert job.status is Status.SCHEDULED
        promoted = await wait_status(producer, job_id, Status.PENDING, timeout=5)
    finally:
        await stop(scheduler, task)
    assert promoted.run_at is not None
    assert promoted.updated_at >= promoted.run_at


async def test_an_earlier_job_wakes_a_sleeping_scheduler(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    scheduler = TickingScheduler(r, keys, result_ttl_seconds=600)
    await enqueue(producer, "echo", "far", delay_seconds=3600)  # a queue with nothing due soon
    task = await start(scheduler)
    try:
        await eventually_async(lambda: subscribers(r, keys.schedule_channel), what="subscribed")
        # After its second pass the scheduler waits MAX_SLEEP (nothing is due within it).
        await eventually_async(lambda: _after(scheduler, 2), what="two passes")
        job_id = await enqueue(producer, "echo", "soon", delay_seconds=0.3)
        job = await wait_status(producer, job_id, Status.PENDING, timeout=5)
    finally:
        await stop(scheduler, task)
    assert job.run_at is not None
    late_ms = job.updated_at - job.run_at  # both in Redis/host milliseconds
    assert 0 <= late_ms < 500, late_ms
    # Without the wake-up, the pass after a MAX_SLEEP wait would come about 700 ms late.
    assert MAX_SLEEP * 1000 - 300 > 500


async def test_request_stop_ends_run(r: Redis, keys: Keys, producer: ProducerStore) -> None:
    await enqueue(producer, "echo", delay_seconds=3600)
    scheduler = TickingScheduler(r, keys, result_ttl_seconds=600)
    task = await start(scheduler)
    await eventually_async(lambda: _after(scheduler, 2), what="two passes")
    began = time.monotonic()
    scheduler.request_stop()
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - began < MAX_SLEEP + 1
    assert await subscribers(r, keys.schedule_channel) == 0


async def test_request_stop_before_run_returns_at_once(r: Redis, keys: Keys) -> None:
    scheduler = Scheduler(r, keys, result_ttl_seconds=600)
    scheduler.request_stop()
    await asyncio.wait_for(scheduler.run(), 2)


async def test_expire_all_drops_expired_index_entries(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    done_id = await enqueue(producer, "echo", "done")
    waiting_id = await enqueue(producer, "echo", "waiting")
    consumer = ConsumerStore(r, keys, "c-1", max_deliveries=5, result_ttl_seconds=1)
    await consumer.ensure_groups(["default"])
    deliveries = await consumer.read(["default"], count=1, block_ms=100)
    claimed = await consumer.claim(deliveries)
    [job] = claimed.run
    assert job.job_id == done_id
    outcome = await consumer.finish(
        completions=[Completion(job, codec.encode("ok"))], schedule_channel=keys.schedule_channel
    )
    assert outcome == {done_id: "completed"}
    q = keys.queue("default")
    scheduler = Scheduler(r, keys, result_ttl_seconds=1)
    await scheduler.expire_all()  # not expired yet: everything stays
    assert await r.zscore(q.all_index, done_id) is not None
    assert await r.zscore(q.index(Status.COMPLETED), done_id) is not None

    async def dropped() -> bool:
        await scheduler.expire_all()
        return await r.zscore(q.all_index, done_id) is None

    await eventually_async(dropped, timeout=5, what="expired entries dropped")
    assert await r.zscore(q.index(Status.COMPLETED), done_id) is None
    assert await r.zscore(q.expiries, done_id) is None

    async def hash_gone() -> bool:  # the hash expires by its own TTL, at about the same time
        return not await r.exists(q.job(done_id))

    await eventually_async(hash_gone, timeout=2, what="job hash expired")
    # A job that has not finished keeps its entries.
    assert await r.zscore(q.all_index, waiting_id) is not None
    assert await r.zscore(q.index(Status.PENDING), waiting_id) is not None
    assert (await producer.get(waiting_id)).status is Status.PENDING


async def _after(scheduler: TickingScheduler, passes: int) -> bool:
    return scheduler.ticks >= passes


async def _warm_scripts(r: Redis, *names: str) -> None:
    """Load scripts up front: a pipelined call meeting NOSCRIPT is sent again on its own."""
    for name in names:
        await r.script_load(getattr(scripts(), name).source)


async def test_a_pass_over_500_queues_takes_a_constant_few_round_trips(
    r: Redis, keys: Keys, producer: ProducerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    queues = [f"q{i}" for i in range(500)]
    jobs = await producer.enqueue([seed.spec(q, delay_seconds=seed.FAR_FUTURE_S) for q in queues])
    for job in jobs:
        await seed.make_due(r, keys, job.queue, [job.id])
    await _warm_scripts(r, "promote")
    scheduler = Scheduler(r, keys, result_ttl_seconds=600)
    scheduler._next_expire = float("inf")  # the promote pass alone
    scheduler._next_limits = float("inf")
    trips = RoundTrips(monkeypatch)
    await scheduler.tick()
    # Redis TIME (a first pass learns the clock offset); the registry; every queue's
    # earliest due time, due candidates, promote script; the earliest periodic schedules.
    assert trips.count == 6
    assert scheduler.promoted == 500
    for job in jobs[::50]:
        assert await seed.status_of(r, keys, job.queue, job.id) is Status.PENDING
    trips.count = 0
    await scheduler.tick()  # nothing due: the registry, the earliest due times, schedules
    assert trips.count == 3
    await _warm_scripts(r, "limits_sweep")
    trips.count = 0
    await scheduler.sweep_limits(queues)  # the concurrency slots of every queue
    assert trips.count == 1


async def test_the_expire_pass_removes_queues_holding_no_job(
    r: Redis, keys: Keys, producer: ProducerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    queues = [f"q{i}" for i in range(500)]
    await producer.enqueue([seed.spec(q) for q in queues])
    drained = await enqueue(producer, "echo", "drained", queue="drained")
    await producer.cancel(drained)
    assert await producer.purge("drained", Status.CANCELED) == 1
    await _warm_scripts(r, "expire", "retire", "unregister")
    scheduler = Scheduler(r, keys, result_ttl_seconds=600)
    trips = RoundTrips(monkeypatch)
    await scheduler.expire_all()
    # The registry; the expire scripts (2 pipelines of <= 500); the generations, the
    # retire scripts and the one unregister (per 500 queues: 501 here, so twice each).
    assert trips.count == 1 + 2 + 2 * 2 + 1
    names: Any = await r.smembers(keys.queues)
    assert {n.decode() for n in names} == set(queues)


async def test_a_starting_scheduler_backfills_the_id_index_once(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    job_id = await enqueue(producer, "echo", "old")
    await r.hdel(keys.id_index(job_id), job_id)  # as created before the index existed
    scheduler = Scheduler(r, keys, result_ttl_seconds=600)
    task = await start(scheduler)
    try:

        async def found() -> bool:
            return bool(await r.exists(keys.id_index_filled))

        await eventually_async(found, timeout=5, what="id index backfilled")
    finally:
        await stop(scheduler, task)
    assert (await producer.get(job_id)).queue == "default"
