"""Retention: finished jobs' hashes expire by TTL, and expire.lua (SchedulerStore.expire)
then drops their index entries. Runs with a result TTL of one second."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from conveyor.states import TERMINAL, Status
from conveyor.store.consumer import ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.store.scheduling import SchedulerStore
from conveyor.values import ListQuery
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants
from tests.helpers.wait import eventually_async

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE


@pytest.fixture
def short_producer(r: Redis, keys: Keys) -> ProducerStore:
    return seed.producer_store(r, keys, result_ttl_seconds=1)


@pytest.fixture
def short_consumer(r: Redis, keys: Keys) -> ConsumerStore:
    return seed.consumer_store(r, keys, "c1", max_deliveries=1, result_ttl_seconds=1)


async def finish_each_way(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> dict[str, Status]:
    """One job per way of finishing; job id -> its terminal status."""
    out: dict[str, Status] = {}
    job = await seed.enqueue(producer, Q)
    await seed.complete(consumer, await seed.claim_one(consumer, Q))
    out[job.id] = Status.COMPLETED
    job = await seed.enqueue(producer, Q)
    await seed.fail(consumer, await seed.claim_one(consumer, Q), retryable=False)
    out[job.id] = Status.FAILED
    job = await seed.enqueue(producer, Q)
    await producer.cancel(job.id)
    out[job.id] = Status.CANCELED
    job = await seed.enqueue(producer, Q)  # poison: delivered twice with max_deliveries=1
    await seed.claim_one(consumer, Q)
    other = seed.consumer_store(r, keys, "c2", max_deliveries=1, result_ttl_seconds=1)
    result = await other.claim(await seed.reclaim(other, Q))
    assert result.poisoned == [job.id]
    out[job.id] = Status.FAILED
    return out


async def test_finished_jobs_expire_then_leave_every_index(
    r: Redis,
    keys: Keys,
    short_producer: ProducerStore,
    short_consumer: ConsumerStore,
    scheduler: SchedulerStore,
) -> None:
    finished = await finish_each_way(r, keys, short_producer, short_consumer)
    keep = await seed.enqueue(short_producer, Q)  # still pending: must not be touched
    q = keys.queue(Q)
    for job_id, status in finished.items():
        assert 0 < await r.pttl(q.job(job_id)) <= 1000
        assert await seed.index_statuses(r, keys, Q, job_id) == {status}
    assert await r.zcard(q.expiries) == len(finished)
    assert await scheduler.expire(Q, 100) == 0  # nothing is due yet
    await assert_invariants(r, keys, [Q])

    async def hashes_gone() -> bool:
        return all([not await r.exists(q.job(i)) for i in finished])

    await eventually_async(hashes_gone, timeout=5, what="finished job hashes expired")
    # Retention over, expire.lua not run yet: listing skips them, invariants allow them.
    page = await short_producer.list_jobs(ListQuery())
    assert [j.id for j in page.items] == [keep.id]
    await assert_invariants(r, keys, [Q])

    async def expired() -> int:
        return await scheduler.expire(Q, 100)

    removed = await eventually_async(expired, timeout=5, what="index entries expired")
    removed += await scheduler.expire(Q, 100)

    assert removed == len(finished)
    assert await r.zcard(q.expiries) == 0
    assert await r.zrange(q.all_index, 0, -1) == [keep.id.encode()]
    for s in TERMINAL:
        assert await r.zcard(q.index(s)) == 0
    assert await seed.index_statuses(r, keys, Q, keep.id) == {Status.PENDING}
    assert await seed.status_of(r, keys, Q, keep.id) is Status.PENDING
    assert await scheduler.expire(Q, 100) == 0
    await assert_invariants(r, keys, [Q])


async def test_expire_removes_at_most_limit_per_call(
    r: Redis, keys: Keys, short_producer: ProducerStore, scheduler: SchedulerStore
) -> None:
    jobs = await seed.enqueue_many(short_producer, 5, Q)
    for j in jobs:
        await short_producer.cancel(j.id)
    q = keys.queue(Q)

    async def hashes_gone() -> bool:
        return await r.exists(*(q.job(j.id) for j in jobs)) == 0

    await eventually_async(hashes_gone, timeout=5, what="job hashes expired")
    counts = [await scheduler.expire(Q, 2) for _ in range(4)]

    assert counts == [2, 2, 1, 0]
    assert await r.zcard(q.all_index) == 0
    assert await r.zcard(q.index(Status.CANCELED)) == 0
    await assert_invariants(r, keys, [Q])
