"""claim.lua with `defer_last_chance`: a job one lost attempt away from poison is handed
back untouched (the worker claims it later on its own, see worker/last_chance.py)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from conveyor.states import Status
from conveyor.store.consumer import ClaimResult, ConsumerStore, Delivery
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE


async def _pending_with_lost(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, lost: int
) -> tuple[str, list[Delivery]]:
    """A pending job as if `lost` of its attempts had been lost, delivered to `consumer`."""
    job = await seed.enqueue(producer, Q)
    await r.hset(keys.queue(Q).job(job.id), "lost", lost)
    return job.id, await seed.deliver(consumer, Q)


async def test_a_delivered_job_on_its_last_chance_is_deferred_and_nothing_is_written(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    consumer = seed.consumer_store(r, keys, "c1", max_deliveries=3)
    job_id, deliveries = await _pending_with_lost(r, keys, producer, consumer, lost=2)
    before = await seed.job_hash(r, keys, Q, job_id)

    result = await consumer.claim(deliveries, defer_last_chance=True)

    assert result == ClaimResult(deferred=deliveries)
    assert result.deferred[0] is deliveries[0]
    assert await seed.job_hash(r, keys, Q, job_id) == before
    assert list(await seed.pel(r, keys, Q)) == [deliveries[0].entry_id]  # still held
    # Claimed on its own later, it starts as usual.
    [claimed] = (await consumer.claim(deliveries)).run
    assert (claimed.job_id, claimed.attempt) == (job_id, 1)
    await assert_invariants(r, keys, [Q])


async def test_a_takeover_that_would_leave_one_chance_is_deferred_before_it_is_counted(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    dead = seed.consumer_store(r, keys, "dead", max_deliveries=3)
    heir = seed.consumer_store(r, keys, "heir", max_deliveries=3)
    job = await seed.enqueue(producer, Q)
    await r.hset(keys.queue(Q).job(job.id), "lost", 1)
    await seed.claim_one(dead, Q)
    before = await seed.job_hash(r, keys, Q, job.id)
    deliveries = await seed.reclaim(heir, Q)

    result = await heir.claim(deliveries, defer_last_chance=True)

    assert [d.job_id for d in result.deferred] == [job.id]
    assert await seed.job_hash(r, keys, Q, job.id) == before  # the loss is not written yet
    [run] = (await heir.claim(deliveries)).run  # its own claim writes it
    h = await seed.job_hash(r, keys, Q, job.id)
    assert (h["lost"], run.attempt) == (b"2", 2)
    await assert_invariants(r, keys, [Q])


@pytest.mark.parametrize(
    ("max_deliveries", "lost"),
    [(3, 0), (3, 1), (5, 3), (1, 0), (2, 0)],
)
async def test_jobs_with_more_than_one_chance_left_are_started(
    r: Redis, keys: Keys, producer: ProducerStore, max_deliveries: int, lost: int
) -> None:
    consumer = seed.consumer_store(r, keys, "c1", max_deliveries=max_deliveries)
    job_id, deliveries = await _pending_with_lost(r, keys, producer, consumer, lost)

    result = await consumer.claim(deliveries, defer_last_chance=True)

    assert [j.job_id for j in result.run] == [job_id]
    assert result.deferred == []


async def test_without_the_flag_a_last_chance_job_is_started(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    consumer = seed.consumer_store(r, keys, "c1", max_deliveries=3)
    job_id, deliveries = await _pending_with_lost(r, keys, producer, consumer, lost=2)

    result = await consumer.claim(deliveries)

    assert [j.job_id for j in result.run] == [job_id]


async def test_a_takeover_that_makes_the_job_poison_or_canceled_is_not_deferred(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    dead = seed.consumer_store(r, keys, "dead", max_deliveries=3)
    heir = seed.consumer_store(r, keys, "heir", max_deliveries=3)
    poison = await seed.enqueue(producer, Q)
    canceled = await seed.enqueue(producer, Q)
    await r.hset(keys.queue(Q).job(poison.id), "lost", 2)  # this takeover is the third loss
    await r.hset(keys.queue(Q).job(canceled.id), "lost", 1)
    await seed.claim_all(dead, Q)
    await producer.cancel(canceled.id)  # running: only requested
    deliveries = await seed.reclaim(heir, Q)

    result = await heir.claim(deliveries, defer_last_chance=True)

    assert (result.poisoned, result.canceled, result.deferred) == ([poison.id], [canceled.id], [])
    assert await seed.status_of(r, keys, Q, poison.id) is Status.FAILED
    assert await seed.status_of(r, keys, Q, canceled.id) is Status.CANCELED
    await assert_invariants(r, keys, [Q])
