"""Pausing a queue (store/pause.py): no job of a paused queue starts, neither through the
worker's fetch (read_claim.lua reads nothing of it) nor through a claim (claim.lua hands a
delivered or reclaimed entry back, uncharged); resuming lets them start again."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis

from conveyor.states import Status
from conveyor.store.consumer import ClaimedJob, ClaimResult, ConsumerStore
from conveyor.store.inspect import queue_stats
from conveyor.store.keys import Keys
from conveyor.store.pause import set_paused
from conveyor.store.producer import ProducerStore
from conveyor.store.registry import QueueRegistry
from conveyor.store.scheduling import SchedulerStore
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants
from tests.helpers.wait import eventually_async

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE


async def test_a_paused_queue_is_not_read_and_a_resumed_one_is(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    jobs = [await seed.enqueue(producer, Q) for _ in range(3)]
    await consumer.ensure_groups([Q])
    stats = await set_paused(r, keys, Q, True)
    assert stats is not None
    assert stats.paused
    assert stats.waiting == 3
    assert await consumer.fetch([Q], count=10, block_ms=0) == (ClaimResult(), [])
    # Nothing was delivered: the group's PEL is empty, every job still waits.
    assert await seed.pel(r, keys, Q) == {}
    for job in jobs:
        assert await seed.status_of(r, keys, Q, job.id) == Status.PENDING
    resumed = await set_paused(r, keys, Q, False)
    assert resumed is not None
    assert not resumed.paused
    claimed, _ = await consumer.fetch([Q], count=10, block_ms=0)
    assert [j.job_id for j in claimed.run] == [j.id for j in jobs]
    await assert_invariants(r, keys, [Q])


async def test_a_paused_queue_does_not_hold_back_the_others(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    await seed.enqueue(producer, "held")
    other = await seed.enqueue(producer, "free")
    await consumer.ensure_groups(["held", "free"])
    await set_paused(r, keys, "held", True)
    claimed, _ = await consumer.fetch(["held", "free"], count=10, block_ms=0)
    assert [(j.queue, j.job_id) for j in claimed.run] == [("free", other.id)]
    await assert_invariants(r, keys, ["held", "free"])


async def test_an_idle_fetch_does_not_wait_on_a_paused_queue(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    """The paused queue's newest entry is not watched: a job arriving on it does not wake
    the wait (that would make an idle worker spin), a job on another queue does."""
    await consumer.ensure_groups(["held", "free"])
    await set_paused(r, keys, "held", True)
    assert await consumer.fetch(["held", "free"], count=10, block_ms=0) == (ClaimResult(), [])
    await seed.enqueue(producer, "held")
    started = time.monotonic()
    assert await consumer.fetch(["held", "free"], count=10, block_ms=300) == (ClaimResult(), [])
    assert time.monotonic() - started >= 0.25  # waited its block time, not woken
    job = await seed.enqueue(producer, "free")
    claimed, _ = await consumer.fetch(["held", "free"], count=10, block_ms=300)
    assert [j.job_id for j in claimed.run] == [job.id]


async def test_with_every_queue_paused_a_fetch_sleeps_its_block_time(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    await seed.enqueue(producer, Q)
    await consumer.ensure_groups([Q])
    await set_paused(r, keys, Q, True)
    assert await consumer.fetch([Q], count=10, block_ms=0) == (ClaimResult(), [])
    started = time.monotonic()
    assert await consumer.fetch([Q], count=10, block_ms=200) == (ClaimResult(), [])
    assert time.monotonic() - started >= 0.18
    await set_paused(r, keys, Q, False)
    claimed, _ = await consumer.fetch([Q], count=10, block_ms=200)
    assert len(claimed.run) == 1


async def test_a_delivered_entry_of_a_paused_queue_goes_back_uncharged(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q)
    deliveries = await seed.deliver(consumer, Q)
    old_entry = deliveries[0].entry_id
    await set_paused(r, keys, Q, True)
    result = await consumer.claim(deliveries)
    assert result.handed_back == [job.id]
    assert result.run == []
    stored = await seed.job_hash(r, keys, Q, job.id)
    assert stored["status"] == b"pending"
    assert stored["attempts"] == b"0"
    assert stored["deliveries"] == b"0"
    assert stored["entry"].decode() != old_entry
    assert await seed.pel(r, keys, Q) == {}  # the old entry was acknowledged
    assert await seed.stream_job_ids(r, keys, Q) == [job.id]
    await assert_invariants(r, keys, [Q])
    # The consumer leaves the queue out of its reads for a while: no loop of hand-backs.
    assert await consumer.read([Q], count=10, block_ms=50) == []
    await set_paused(r, keys, Q, False)

    async def started() -> list[ClaimedJob]:
        delivered = await consumer.read([Q], count=10, block_ms=50)
        return (await consumer.claim(delivered)).run if delivered else []

    # Read again once the consumer looks at the queue again (PAUSED_RECHECK_SECONDS).
    [run] = await eventually_async(started, timeout=5, what="the resumed job started")
    assert run.job_id == job.id
    assert run.attempt == 1
    await assert_invariants(r, keys, [Q])


async def test_a_reclaimed_attempt_of_a_paused_queue_goes_back_pending(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q)
    await seed.claim_one(consumer, Q)  # its worker then stops renewing the lease
    await set_paused(r, keys, Q, True)
    other = seed.consumer_store(r, keys, "c2")
    taken = await seed.reclaim(other, Q)
    result = await other.claim(taken)
    assert result.handed_back == [job.id]
    assert result.run == []
    stored = await seed.job_hash(r, keys, Q, job.id)
    assert stored["status"] == b"pending"
    assert stored["lost"] == b"1"  # the lost attempt did happen
    assert "token" not in stored
    assert "worker" not in stored
    assert await seed.index_statuses(r, keys, Q, job.id) == {Status.PENDING}
    await assert_invariants(r, keys, [Q])


async def test_the_scheduler_still_promotes_into_a_paused_queue(
    r: Redis, keys: Keys, producer: ProducerStore, scheduler: SchedulerStore
) -> None:
    [job] = await seed.enqueue_scheduled(producer, Q)
    await set_paused(r, keys, Q, True)
    await seed.make_due(r, keys, Q, [job.id])
    result = await scheduler.promote_due(Q, await seed.redis_now_ms(r), 10)
    assert result.promoted == 1
    assert await seed.status_of(r, keys, Q, job.id) == Status.PENDING
    await assert_invariants(r, keys, [Q])


async def test_pausing_an_unknown_queue_writes_nothing(r: Redis, keys: Keys) -> None:
    assert await set_paused(r, keys, "nowhere", True) is None
    assert await r.exists(keys.queue("nowhere").paused) == 0


async def test_a_paused_empty_queue_stays_in_the_registry(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    job = await seed.enqueue(producer, Q)
    await producer.cancel(job.id)
    await producer.purge(Q, "canceled", None)
    await set_paused(r, keys, Q, True)
    registry = QueueRegistry(r, keys)
    assert await registry.retire_drained([Q]) == []
    stats = await queue_stats(r, keys, Q)
    assert stats is not None
    assert stats.paused
    await set_paused(r, keys, Q, False)
    assert await registry.retire_drained([Q]) == [Q]


async def test_pausing_twice_and_resuming_twice_change_nothing_more(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    await seed.enqueue(producer, Q)
    for paused in (True, True, False, False):
        stats = await set_paused(r, keys, Q, paused)
        assert stats is not None
        assert stats.paused is paused
