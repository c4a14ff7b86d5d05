"""shared/store/inspect.py: queue statistics over jobs put in every state by the real
scripts, a constant number of round trips per chunk of queues, and a read capped at a
number of queues."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from conveyor.store.consumer import ConsumerStore
from conveyor.store.inspect import (
    CHUNK_QUEUES,
    QueueSnapshot,
    all_queue_stats,
    queue_snapshot,
    queue_stats,
)
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.store.scripts import scripts
from conveyor.values import QueueStats
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants
from tests.helpers.round_trips import RoundTrips

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE


async def fill(producer: ProducerStore, consumer: ConsumerStore, consumer2: ConsumerStore) -> str:
    """Jobs in every state; returns the id of the oldest job nobody was given yet."""
    done, bad, again, _, _ = await producer.enqueue(
        [seed.spec(Q, max_attempts=n) for n in (1, 1, 3, 1, 1)]
    )
    claimed = {c.job_id: c for c in await seed.claim_all(consumer, Q)}
    await seed.complete(consumer, claimed[done.id])
    await seed.fail(consumer, claimed[bad.id], retryable=False)
    await seed.fail(consumer, claimed[again.id], delay_ms=3_600_000)  # two stay running
    await producer.cancel((await seed.enqueue(producer, Q)).id)
    await seed.enqueue_scheduled(producer, Q)
    await seed.enqueue(producer, Q)
    assert len(await seed.deliver(consumer2, Q)) == 1  # delivered, not claimed
    waiting = await seed.enqueue(producer, Q)
    await seed.enqueue(producer, Q)
    return waiting.id


async def test_every_number_of_a_busy_queue(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    consumer: ConsumerStore,
    consumer2: ConsumerStore,
) -> None:
    oldest = await fill(producer, consumer, consumer2)
    entry = (await seed.job_hash(r, keys, Q, oldest))["entry"].decode()
    now = await seed.redis_now_ms(r)

    stats = await queue_stats(r, keys, Q)

    assert stats is not None
    age = stats.oldest_waiting_age_seconds
    assert age is not None
    assert stats == QueueStats(
        name=Q,
        waiting=2,
        pending_in_group=3,  # two running, one delivered and not yet claimed
        running=2,
        scheduled=1,
        retrying=1,
        failed=1,
        completed=1,
        canceled=1,
        consumers=2,
        oldest_waiting_age_seconds=age,
    )
    assert age == pytest.approx((now - int(entry.split("-")[0])) / 1000, abs=1.0)
    assert stats.to_json()["oldest_waiting_age_seconds"] == age
    assert set(stats.to_json()) == {
        "name", "waiting", "pending_in_group", "running", "scheduled", "retrying", "failed",
        "completed", "canceled", "consumers", "oldest_waiting_age_seconds", "expired", "paused",
    }  # fmt: skip
    await assert_invariants(r, keys, [Q])


async def test_the_oldest_waiting_age_grows_and_ends_when_nothing_waits(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    await seed.enqueue(producer, Q)
    first = await queue_stats(r, keys, Q)
    await asyncio.sleep(0.05)
    second = await queue_stats(r, keys, Q)
    assert first is not None
    assert second is not None
    assert first.oldest_waiting_age_seconds is not None
    assert second.oldest_waiting_age_seconds is not None
    assert second.oldest_waiting_age_seconds >= first.oldest_waiting_age_seconds + 0.04

    await seed.claim_one(consumer, Q)
    running = await queue_stats(r, keys, Q)
    assert running is not None
    assert (running.waiting, running.running, running.oldest_waiting_age_seconds) == (0, 1, None)
    await assert_invariants(r, keys, [Q])


async def test_a_canceled_waiting_job_no_longer_counts(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    first = await seed.enqueue(producer, Q)
    await seed.enqueue(producer, Q)
    await producer.cancel(first.id)
    stats = await queue_stats(r, keys, Q)
    assert stats is not None
    assert (stats.waiting, stats.canceled, stats.consumers) == (1, 1, 0)
    await assert_invariants(r, keys, [Q])


async def test_a_queue_without_a_stream_has_zeros(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    await seed.enqueue_scheduled(producer, "later")
    stats = await queue_stats(r, keys, "later")
    assert stats == QueueStats("later", 0, 0, 0, 1, 0, 0, 0, 0, 0, None)
    await assert_invariants(r, keys, ["later"])


async def test_an_unknown_queue_is_none(r: Redis, keys: Keys, producer: ProducerStore) -> None:
    await seed.enqueue(producer, "known")
    assert await queue_stats(r, keys, "unknown") is None
    assert [s.name for s in await all_queue_stats(r, keys)] == ["known"]
    await assert_invariants(r, keys)


async def test_no_queues_no_stats(r: Redis, keys: Keys) -> None:
    assert await all_queue_stats(r, keys) == []


async def test_round_trips_do_not_grow_with_the_number_of_queues(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    consumer: ConsumerStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await seed.enqueue(producer, "q0")
    await r.script_load(scripts().queue_stats.source)  # else the first call loads it
    trips = RoundTrips(monkeypatch)
    [one] = await all_queue_stats(r, keys)
    single = trips.count
    again = await queue_stats(r, keys, "q0")
    assert again is not None
    assert replace(again, oldest_waiting_age_seconds=0) == replace(
        one, oldest_waiting_age_seconds=0
    )
    assert trips.count - single == single

    await producer.enqueue([seed.spec(f"q{i}") for i in range(1, 30)])
    await seed.claim_all(consumer, "q7")
    trips.count = 0
    stats = await all_queue_stats(r, keys)
    assert trips.count == single == 2  # the names; one script call per queue, pipelined
    assert [s.name for s in stats] == sorted(f"q{i}" for i in range(30))
    assert {s.name: s.running for s in stats if s.running} == {"q7": 1}
    await assert_invariants(r, keys)


async def test_many_queues_are_read_in_chunks(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past CHUNK_QUEUES queues, one more round trip per chunk, and the same numbers."""
    count = 2 * CHUNK_QUEUES + 5
    await producer.enqueue([seed.spec(f"q{i:04d}") for i in range(count)])
    await producer.enqueue([seed.spec("q0150")])
    await r.script_load(scripts().queue_stats.source)
    trips = RoundTrips(monkeypatch)
    stats = await all_queue_stats(r, keys)
    if trips.counts(r):  # the tests of tests/cluster run this one against a cluster too
        assert trips.count == 1 + 3
    assert [s.name for s in stats] == [f"q{i:04d}" for i in range(count)]
    assert {s.name: s.waiting for s in stats if s.waiting != 1} == {"q0150": 2}
    assert all(s.oldest_waiting_age_seconds is not None for s in stats)


async def test_a_snapshot_reads_at_most_max_queues_by_name(
    r: Redis, keys: Keys, producer: ProducerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await producer.enqueue([seed.spec(name) for name in ["d", "b", "e", "a", "c"]])
    await r.script_load(scripts().queue_stats.source)
    trips = RoundTrips(monkeypatch)
    snapshot = await queue_snapshot(r, keys, 3)
    if trips.counts(r):
        assert trips.count == 2
    assert [s.name for s in snapshot.items] == ["a", "b", "c"]
    assert (snapshot.total, snapshot.complete) == (5, False)
    whole = await queue_snapshot(r, keys, 5)
    assert whole.complete
    assert list(whole.items) == [
        replace(s, oldest_waiting_age_seconds=w.oldest_waiting_age_seconds)
        for s, w in zip(await all_queue_stats(r, keys), whole.items, strict=True)
    ]
    assert await queue_snapshot(r, Keys(keys.prefix + "-none"), 10) == QueueSnapshot((), 0)
