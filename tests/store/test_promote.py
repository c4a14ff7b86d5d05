"""promote.lua through SchedulerStore.promote_due: due jobs move onto the stream once,
however many schedulers race, and only by Redis's clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from conveyor.ids import new_job_id
from conveyor.states import Status
from conveyor.store.consumer import ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.store.scheduling import PromoteResult, SchedulerStore
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants
from tests.helpers.redis_server import RedisServer

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE
FAR = 10 * 3600 * 1000


async def delayed_job(
    given: str, producer: ProducerStore, consumer: ConsumerStore
) -> tuple[str, int]:
    """A scheduled or retrying job, due far away; returns (id, due_ms)."""
    if given == "scheduled":
        [job] = await seed.enqueue_scheduled(producer, Q)
        assert job.run_at is not None
        return job.id, job.run_at
    job = await seed.enqueue(producer, Q, max_attempts=3)
    c = await seed.claim_one(consumer, Q)
    assert await seed.fail(consumer, c, delay_ms=3_600_000) == "retrying"
    h = await seed.job_hash(producer.redis, producer.keys, Q, job.id)
    return job.id, int(h["next_run_at"])


@pytest.mark.parametrize("given", ["scheduled", "retrying"])
async def test_a_due_job_becomes_pending_with_a_fresh_entry(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    consumer: ConsumerStore,
    scheduler: SchedulerStore,
    given: str,
) -> None:
    job_id, _ = await delayed_job(given, producer, consumer)
    await seed.make_due(r, keys, Q, [job_id])
    before = await seed.redis_now_ms(r)

    result = await scheduler.promote_due(Q, before, 100)

    assert result.promoted == 1
    assert result.now_ms >= before
    assert result.next_due_ms is None
    h = await seed.job_hash(r, keys, Q, job_id)
    assert h["status"] == b"pending"
    assert int(h["updated_at"]) == result.now_ms
    assert await seed.stream_job_ids(r, keys, Q) == [job_id]
    entries: Any = await r.xrange(keys.queue(Q).stream)
    [(entry, _)] = entries
    assert h["entry"] == entry
    assert await seed.delayed_score(r, keys, Q, job_id) is None
    assert await seed.index_statuses(r, keys, Q, job_id) == {Status.PENDING}
    assert "token" not in h
    await assert_invariants(r, keys, [Q])

    claimed = await seed.claim_one(consumer, Q)
    assert claimed.job_id == job_id
    await assert_invariants(r, keys, [Q])


@pytest.mark.parametrize("given", ["scheduled", "retrying"])
async def test_redis_time_decides_not_the_schedulers_estimate(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    consumer: ConsumerStore,
    scheduler: SchedulerStore,
    given: str,
) -> None:
    """A scheduler whose clock runs ahead picks candidates that are not due: none moves."""
    job_id, due = await delayed_job(given, producer, consumer)
    now = await seed.redis_now_ms(r)

    result = await scheduler.promote_due(Q, now + FAR, 100)

    assert result == PromoteResult(0, result.now_ms, due)
    assert await seed.status_of(r, keys, Q, job_id) == Status(given)
    assert await seed.delayed_score(r, keys, Q, job_id) == due
    assert await r.xlen(keys.queue(Q).stream) == 0
    await assert_invariants(r, keys, [Q])


async def test_due_jobs_are_promoted_in_due_order_up_to_the_limit(
    r: Redis, keys: Keys, producer: ProducerStore, scheduler: SchedulerStore
) -> None:
    jobs = await seed.enqueue_scheduled(producer, Q, n=5)
    later = await seed.enqueue_scheduled(producer, Q, n=1, delay_seconds=7200)
    # Due in the reverse order of creation.
    await r.zadd(keys.queue(Q).delayed, {j.id: 10 + i for i, j in enumerate(reversed(jobs))})
    now = await seed.redis_now_ms(r)

    first = await scheduler.promote_due(Q, now, 3)
    second = await scheduler.promote_due(Q, now, 3)
    third = await scheduler.promote_due(Q, now, 3)

    assert (first.promoted, first.next_due_ms) == (3, 13)
    assert (second.promoted, second.next_due_ms) == (2, later[0].run_at)
    assert (third.promoted, third.next_due_ms) == (0, later[0].run_at)
    assert await seed.stream_job_ids(r, keys, Q) == [j.id for j in reversed(jobs)]
    assert await seed.status_of(r, keys, Q, later[0].id) is Status.SCHEDULED
    await assert_invariants(r, keys, [Q])


async def test_nothing_delayed_reports_no_next_due_time(
    r: Redis, keys: Keys, scheduler: SchedulerStore
) -> None:
    result = await scheduler.promote_due(Q, await seed.redis_now_ms(r), 10)
    assert (result.promoted, result.next_due_ms) == (0, None)
    await assert_invariants(r, keys, [Q])


@pytest.mark.parametrize("given", ["missing", "canceled", "pending"])
async def test_a_delayed_member_without_a_delayed_job_is_dropped_not_pushed(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    scheduler: SchedulerStore,
    given: str,
) -> None:
    if given == "missing":
        job_id = new_job_id()
    else:
        job = await seed.enqueue(producer, Q)
        job_id = job.id
        if given == "canceled":
            await producer.cancel(job_id)
    await r.zadd(keys.queue(Q).delayed, {job_id: 1})  # a stray member
    stream_before = await seed.stream_job_ids(r, keys, Q)

    result = await scheduler.promote_due(Q, await seed.redis_now_ms(r), 10)

    assert result.promoted == 0
    assert await seed.delayed_score(r, keys, Q, job_id) is None
    assert await seed.stream_job_ids(r, keys, Q) == stream_before
    await assert_invariants(r, keys, [Q])


# -- racing schedulers ----------------------------------------------------------------------


@pytest.fixture
async def clients(redis_server: RedisServer) -> AsyncIterator[list[Redis]]:
    made = [Redis(port=redis_server.port, socket_timeout=10) for _ in range(3)]
    yield made
    for c in made:
        await c.aclose()


@pytest.mark.parametrize("limit", [40, 500])
async def test_racing_schedulers_promote_each_job_exactly_once(
    r: Redis, keys: Keys, producer: ProducerStore, clients: list[Redis], limit: int
) -> None:
    """With limit 500 the three pick the very same 500 candidates; with 40 they interleave."""
    n = 500
    jobs = await seed.enqueue_scheduled(producer, Q, n=n)
    await seed.make_due(r, keys, Q, [j.id for j in jobs])
    schedulers = [SchedulerStore(c, keys) for c in clients]

    async def run(s: SchedulerStore) -> int:
        total = 0
        while True:
            result = await s.promote_due(Q, await seed.redis_now_ms(s.redis), limit)
            total += result.promoted
            if result.next_due_ms is None:
                return total
            await asyncio.sleep(0)

    counts = await asyncio.gather(*(run(s) for s in schedulers))

    assert sum(counts) == n
    q = keys.queue(Q)
    assert await r.xlen(q.stream) == n
    on_stream = await seed.stream_job_ids(r, keys, Q)
    assert sorted(on_stream) == sorted(j.id for j in jobs)  # each exactly once
    assert await r.zcard(q.delayed) == 0
    assert await r.zcard(q.index(Status.PENDING)) == n
    assert await r.zcard(q.index(Status.SCHEDULED)) == 0
    await assert_invariants(r, keys, [Q])
