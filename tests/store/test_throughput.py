"""The per-minute throughput counter: complete.lua and fail.lua count each batch's
completed and failed jobs in the queue's throughput hash, in the same script; the reader
returns a zero-filled window of minutes."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from conveyor.store.consumer import Completion, ConsumerStore, Failure
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.store.throughput import MINUTE_MS, SLOTS, throughput
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE


async def hincrby_calls(r: Redis) -> int:
    """HINCRBY calls this redis-server has run (scripts' calls included)."""
    stats = await r.info("commandstats")
    return int(stats.get("cmdstat_hincrby", {}).get("calls", 0))


async def totals(r: Redis, keys: Keys, queue: str = Q) -> tuple[int, int]:
    """Completed and failed over the last two minutes (a test may straddle a minute)."""
    minutes = (await throughput(r, keys, [queue], 2))[queue]
    return sum(m.completed for m in minutes), sum(m.failed for m in minutes)


async def test_a_batch_counts_its_completed_and_failed_jobs_with_one_hincrby_each(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    await seed.enqueue_many(producer, 7, Q, max_attempts=1)
    claimed = await seed.claim_all(consumer, Q)
    assert len(claimed) == 7
    before = await hincrby_calls(r)

    outcome = await consumer.finish(
        completions=[Completion(c, b"\xc0") for c in claimed[:4]],
        failures=[
            Failure(c, "RuntimeError: x", "failed", retryable=True, delay_ms=0, max_attempts=None)
            for c in claimed[4:]
        ],
        schedule_channel=keys.schedule_channel,
    )

    assert sorted(outcome.values()) == ["completed"] * 4 + ["failed"] * 3
    assert await hincrby_calls(r) - before == 2  # one per outcome kind, not one per job
    assert await totals(r, keys) == (4, 3)
    await assert_invariants(r, keys, [Q])


async def test_retried_and_stale_attempts_are_not_counted(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    await seed.enqueue(producer, Q, max_attempts=3)
    job = await seed.claim_one(consumer, Q)
    assert await seed.fail(consumer, job, retryable=True) == "retrying"
    assert await seed.complete(consumer, job) == "stale"  # the token is no longer current

    assert await totals(r, keys) == (0, 0)
    assert await r.exists(keys.queue(Q).throughput) == 0  # nothing written for zero


async def test_queues_are_counted_apart(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    await seed.enqueue(producer, "a")
    await seed.enqueue(producer, "b")
    await seed.complete(consumer, await seed.claim_one(consumer, "a"))
    await seed.complete(consumer, await seed.claim_one(consumer, "b"))
    assert await totals(r, keys, "a") == (1, 0)
    assert await totals(r, keys, "b") == (1, 0)


async def test_a_slot_left_from_an_older_minute_starts_over(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    """The ring reuses a slot every SLOTS minutes: the old minute's counts are dropped."""
    now_minute = await seed.redis_now_ms(r) // MINUTE_MS
    key = keys.queue(Q).throughput
    # Every slot holds a minute one ring ago, with large counts.
    for minute in range(now_minute - SLOTS + 1, now_minute + 2):
        slot = (minute - SLOTS) % SLOTS
        await r.hset(
            key,
            mapping={f"m:{slot}": minute - SLOTS, f"completed:{slot}": 99, f"failed:{slot}": 98},
        )
    assert await totals(r, keys) == (0, 0)  # old minutes read as zero

    await seed.enqueue(producer, Q)
    await seed.complete(consumer, await seed.claim_one(consumer, Q))

    assert await totals(r, keys) == (1, 0)
    assert await r.hlen(key) == 3 * SLOTS  # the hash never grows past the ring


async def test_the_window_is_zero_filled_oldest_first(r: Redis, keys: Keys) -> None:
    now_minute = await seed.redis_now_ms(r) // MINUTE_MS
    got = (await throughput(r, keys, ["nothing-here"], 15))["nothing-here"]
    assert len(got) == 15
    assert [m.start_ms for m in got] == sorted(m.start_ms for m in got)
    assert got[-1].start_ms // MINUTE_MS in (now_minute, now_minute + 1)
    assert all(m.completed == m.failed == 0 for m in got)
    assert got[-1].to_json()["start"].endswith(":00.000Z")


@pytest.mark.parametrize("minutes", [0, SLOTS + 1])
async def test_the_window_is_bounded_by_the_ring(r: Redis, keys: Keys, minutes: int) -> None:
    with pytest.raises(ValueError, match="minutes"):
        await throughput(r, keys, [Q], minutes)
