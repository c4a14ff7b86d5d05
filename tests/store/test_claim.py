"""claim.lua through ConsumerStore.claim: starting attempts for delivered entries, skipping
entries whose job is gone or elsewhere, repeated claims, poison, and racing consumers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from conveyor import codec
from conveyor.ids import new_job_id
from conveyor.states import Status
from conveyor.store.consumer import ClaimResult, ConsumerStore, Delivery
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE


async def test_claiming_a_pending_job_starts_attempt_one(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(
        producer, Q, "echo", {"a": 1}, max_attempts=4, timeout_seconds=2, correlation_id="c-9"
    )
    [delivery] = await seed.deliver(consumer, Q)
    assert (delivery.job_id, delivery.queue) == (job.id, Q)

    result = await consumer.claim([delivery])

    assert (result.skipped, result.poisoned, result.canceled) == ([], [], [])
    [c] = result.run
    h = await seed.job_hash(r, keys, Q, job.id)
    assert (c.job_id, c.queue, c.entry_id) == (job.id, Q, h["entry"].decode())
    assert (c.token, c.attempt, c.type) == ("c1:1", 1, "echo")
    assert (c.timeout_ms, c.correlation_id, c.max_attempts) == (2000, "c-9", 4)
    assert codec.decode(c.payload) == {"a": 1}
    assert c.ready_at_ms == job.created_at
    assert c.started_at_ms == int(h["started_at"])  # Redis TIME, as ready_at_ms is
    assert h["status"] == b"running"
    assert (h["attempts"], h["deliveries"]) == (b"1", b"1")
    assert (h["worker"], h["token"]) == (b"c1", b"c1:1")
    assert int(h["started_at"]) == int(h["updated_at"]) >= job.created_at
    assert "history" not in h
    assert await r.xlen(keys.queue(Q).stream) == 1  # the entry stays until the attempt ends
    assert await seed.pel(r, keys, Q) == {c.entry_id: "c1"}
    assert await seed.index_statuses(r, keys, Q, job.id) == {Status.RUNNING}
    assert await r.pttl(keys.queue(Q).job(job.id)) == -1
    await assert_invariants(r, keys, [Q], allow_delivered_pending=False)


async def test_unset_job_limits_come_back_as_none(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    await seed.enqueue(producer, Q)
    c = await seed.claim_one(consumer, Q)
    assert (c.timeout_ms, c.correlation_id, c.max_attempts) == (None, None, None)
    assert codec.decode(c.payload) is None
    h = await seed.job_hash(r, keys, Q, c.job_id)
    assert not {"timeout_ms", "correlation_id", "max_attempts"} & set(h)
    await assert_invariants(r, keys, [Q])


async def test_ready_at_is_the_due_time_of_a_promoted_job(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, scheduler
) -> None:
    [job] = await seed.enqueue_scheduled(producer, Q)
    assert job.run_at is not None
    await seed.make_due(r, keys, Q, [job.id])
    await scheduler.promote_due(Q, await seed.redis_now_ms(r), 10)
    c = await seed.claim_one(consumer, Q)
    assert c.ready_at_ms == job.run_at  # later than created_at: the wait starts when due
    await assert_invariants(r, keys, [Q])


# -- deliveries whose job is not (or no longer) waiting for them: table-driven ---------------


Seeder = Callable[[Redis, Keys, ProducerStore, ConsumerStore], Awaitable[tuple[str, Delivery]]]


async def _stray_entry(r: Redis, keys: Keys, job_id: str) -> None:
    """An extra stream entry naming `job_id`, as a bug or an operator could leave behind."""
    await r.xadd(keys.queue(Q).stream, {"id": job_id})


async def _deliver_only(consumer: ConsumerStore) -> Delivery:
    [d] = await seed.deliver(consumer, Q)
    return d


async def seed_missing(r, keys, producer, consumer):
    job_id = new_job_id()
    await consumer.ensure_groups([Q])
    await _stray_entry(r, keys, job_id)
    return job_id, await _deliver_only(consumer)


async def seed_canceled(r, keys, producer, consumer):
    job = await seed.enqueue(producer, Q)
    d = await _deliver_only(consumer)
    await producer.cancel(job.id)  # canceled after delivery, before the claim
    return job.id, d


async def seed_stray_of_pending(r, keys, producer, consumer):
    job = await seed.enqueue(producer, Q)
    await consumer.ensure_groups([Q])
    # Read the real entry as another consumer, so only the stray one is delivered to us.
    other = seed.consumer_store(r, keys, "other")
    await seed.deliver(other, Q)
    await _stray_entry(r, keys, job.id)
    return job.id, await _deliver_only(consumer)


def seed_stray_of(status: Status) -> Seeder:
    async def seeder(r, keys, producer, consumer):
        if status is Status.SCHEDULED:
            [job] = await seed.enqueue_scheduled(producer, Q)
        else:
            job = await seed.enqueue(producer, Q, max_attempts=3)
            c = await seed.claim_one(consumer, Q)
            if status is Status.COMPLETED:
                await seed.complete(consumer, c)
            elif status is Status.RETRYING:
                await seed.fail(consumer, c, delay_ms=60_000)
            elif status is Status.FAILED:
                await seed.fail(consumer, c, retryable=False)
        await consumer.ensure_groups([Q])
        await _stray_entry(r, keys, job.id)
        return job.id, await _deliver_only(consumer)

    return seeder


@pytest.mark.parametrize(
    ("given", "want_status"),
    [
        ("missing", "missing"),
        ("canceled", "canceled"),
        ("stray_of_pending", "pending"),
        ("stray_of_scheduled", "scheduled"),
        ("stray_of_running", "running"),
        ("stray_of_retrying", "retrying"),
        ("stray_of_completed", "completed"),
        ("stray_of_failed", "failed"),
    ],
)
async def test_an_entry_that_is_not_the_jobs_current_one_is_skipped_and_acked(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    consumer: ConsumerStore,
    given: str,
    want_status: str,
) -> None:
    seeders: dict[str, Seeder] = {
        **{f"stray_of_{s.value}": seed_stray_of(s) for s in Status},
        "missing": seed_missing,
        "canceled": seed_canceled,
        "stray_of_pending": seed_stray_of_pending,
    }
    job_id, delivery = await seeders[given](r, keys, producer, consumer)
    before = await seed.job_hash(r, keys, Q, job_id)

    result = await consumer.claim([delivery])

    assert result == ClaimResult(skipped=[(job_id, want_status)])
    assert await seed.job_hash(r, keys, Q, job_id) == before  # the job is not touched
    assert delivery.entry_id not in await seed.pel(r, keys, Q)  # acknowledged
    entries: Any = await r.xrange(keys.queue(Q).stream)
    assert delivery.entry_id.encode() not in [e for e, _ in entries]  # and deleted
    await assert_invariants(r, keys, [Q])


async def test_claiming_again_after_a_lost_reply_changes_nothing(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q, payload=[1])
    [d] = await seed.deliver(consumer, Q)
    first = await consumer.claim([d])
    h = await seed.job_hash(r, keys, Q, job.id)

    again = await consumer.claim([d])

    assert again == first
    assert await seed.job_hash(r, keys, Q, job.id) == h
    assert (h["attempts"], h["deliveries"], h["token"]) == (b"1", b"1", b"c1:1")
    await assert_invariants(r, keys, [Q])


async def test_one_call_claims_entries_of_several_queues(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    a = await seed.enqueue_many(producer, 3, "a")
    b = await seed.enqueue_many(producer, 2, "b")
    await consumer.ensure_groups(["a", "b"])
    deliveries = await consumer.read(["a", "b"], count=10, block_ms=1)
    assert len(deliveries) == 5
    result = await consumer.claim(deliveries)
    assert sorted(c.job_id for c in result.run) == sorted(j.id for j in a + b)
    assert {c.queue for c in result.run if c.job_id in {j.id for j in a}} == {"a"}
    for q, jobs in (("a", a), ("b", b)):
        for j in jobs:
            assert await seed.status_of(r, keys, q, j.id) is Status.RUNNING
        assert len(await seed.pel(r, keys, q)) == len(jobs)
    await assert_invariants(r, keys, ["a", "b"], allow_delivered_pending=False)


async def test_a_fresh_delivery_is_never_poison_however_low_the_bound(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    """Poison counts attempts lost with their worker; a first delivery has lost none."""
    consumer = seed.consumer_store(r, keys, "c1", max_deliveries=1)
    job = await seed.enqueue(producer, Q)
    result = await consumer.claim(await seed.deliver(consumer, Q))
    assert [c.job_id for c in result.run] == [job.id]
    assert result.poisoned == []
    h = await seed.job_hash(r, keys, Q, job.id)
    assert (h["status"], h["deliveries"], h["attempts"]) == (b"running", b"1", b"1")
    assert "lost" not in h
    await assert_invariants(r, keys, [Q])


# -- racing consumers ----------------------------------------------------------------------


async def test_two_consumers_racing_run_each_job_exactly_once(
    r: Redis, other_client: Redis, keys: Keys, producer: ProducerStore
) -> None:
    jobs = await seed.enqueue_many(producer, 200, Q)
    stores = [seed.consumer_store(r, keys, "c1"), seed.consumer_store(other_client, keys, "c2")]
    for s in stores:
        await s.ensure_groups([Q])

    async def work(store: ConsumerStore) -> list[tuple[str, str]]:
        done: list[tuple[str, str]] = []
        while True:
            deliveries = await store.read([Q], count=7, block_ms=1)
            if not deliveries:
                return done
            for c in (await store.claim(deliveries)).run:
                done.append((c.job_id, await seed.complete(store, c, c.job_id)))
                await asyncio.sleep(0)

    c1_done, c2_done = await asyncio.gather(work(stores[0]), work(stores[1]))

    outcomes = c1_done + c2_done
    assert {w for _, w in outcomes} == {"completed"}
    assert sorted(i for i, _ in outcomes) == sorted(j.id for j in jobs)
    assert c1_done  # both took part
    assert c2_done
    q = keys.queue(Q)
    assert await r.xlen(q.stream) == 0
    assert await seed.pel(r, keys, Q) == {}
    assert await r.zcard(q.index(Status.COMPLETED)) == 200
    for j in jobs:
        loaded = await seed.load_job(r, keys, Q, j.id)
        assert loaded is not None
        assert (loaded.result, loaded.attempts, loaded.deliveries) == (j.id, 1, 1)
    await assert_invariants(r, keys, [Q])


async def test_claims_racing_for_one_entry_start_one_attempt(
    r: Redis, other_client: Redis, keys: Keys, producer: ProducerStore
) -> None:
    """c1 reads the entry, c2 takes it over at once (min-idle 0), both claim concurrently:
    only the PEL owner, c2, may start an attempt, and only its completion counts."""
    job = await seed.enqueue(producer, Q)
    c1 = seed.consumer_store(r, keys, "c1")
    c2 = seed.consumer_store(other_client, keys, "c2")
    [d1] = await seed.deliver(c1, Q)
    [d2] = await c2.autoclaim(Q, 0, 10)
    assert d1 == d2

    r1, r2 = await asyncio.gather(c1.claim([d1]), c2.claim([d2]))

    assert r1.run == []
    assert [job_id for job_id, _ in r1.skipped] == [job.id]
    assert len(r2.run) == 1
    assert await seed.complete(c2, r2.run[0], "c2") == "completed"
    h = await seed.job_hash(r, keys, Q, job.id)
    assert (h["status"], h["worker"], h["attempts"]) == (b"completed", b"c2", b"1")
    await assert_invariants(r, keys, [Q])
