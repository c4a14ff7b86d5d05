"""Leases: renew.lua, taking over the entries of a worker that stopped renewing (XAUTOCLAIM
then claim.lua), fencing of the old owner, poison, and releasing dead consumers."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from conveyor.job import Outcome
from conveyor.states import Status
from conveyor.store.consumer import ClaimedJob, ClaimResult, ConsumerStore
from conveyor.store.keys import GROUP, Keys
from conveyor.store.producer import ProducerStore
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE


async def idle_ms(r: Redis, keys: Keys, entry_id: str) -> int:
    rows: Any = await r.xpending_range(keys.queue(Q).stream, GROUP, entry_id, entry_id, 1)
    return int(rows[0]["time_since_delivered"])


async def wait_idle(r: Redis, keys: Keys, entry_id: str, at_least_ms: int) -> int:
    deadline = time.monotonic() + 5
    while (idle := await idle_ms(r, keys, entry_id)) < at_least_ms:
        assert time.monotonic() < deadline, "entry never became idle"
        await asyncio.sleep(at_least_ms / 1000)
    return idle


async def take_over(
    new_owner: ConsumerStore, old: ClaimedJob, queue: str = Q
) -> tuple[ClaimResult, list[Any]]:
    """XAUTOCLAIM `old`'s entry as `new_owner`, then run the claim script on it."""
    deliveries = await seed.reclaim(new_owner, queue)
    assert [d.entry_id for d in deliveries] == [old.entry_id]
    return await new_owner.claim(deliveries), deliveries


# -- renew ---------------------------------------------------------------------------------


async def test_renew_resets_the_idle_time_of_an_owned_entry(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    await seed.enqueue(producer, Q)
    c = await seed.claim_one(consumer, Q)
    idle = await wait_idle(r, keys, c.entry_id, 100)

    assert await consumer.renew([c]) == {c.job_id: "ok"}

    assert await idle_ms(r, keys, c.entry_id) < idle
    assert await seed.pel(r, keys, Q) == {c.entry_id: "c1"}
    assert await seed.delivery_count(r, keys, Q, c.entry_id) == 1  # JUSTID: not a delivery
    await assert_invariants(r, keys, [Q])


async def test_renew_keeps_a_delivery_that_is_not_claimed_yet(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q)
    [d] = await seed.deliver(consumer, Q)
    assert await consumer.renew([d]) == {job.id: "ok"}
    assert await seed.status_of(r, keys, Q, job.id) is Status.PENDING
    await assert_invariants(r, keys, [Q])


async def test_renew_reports_a_requested_cancel(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    await seed.enqueue(producer, Q)
    c = await seed.claim_one(consumer, Q)
    await producer.cancel(c.job_id)
    assert await consumer.renew([c]) == {c.job_id: "cancel"}
    h = await seed.job_hash(r, keys, Q, c.job_id)
    assert (h["status"], h["cancel_requested"]) == (b"running", b"1")
    assert await seed.pel(r, keys, Q) == {c.entry_id: "c1"}
    await assert_invariants(r, keys, [Q])


async def test_renew_reports_lost_after_a_takeover_and_does_not_steal_back(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, consumer2
) -> None:
    await seed.enqueue(producer, Q)
    c = await seed.claim_one(consumer, Q)
    result, _ = await take_over(consumer2, c)
    [c2] = result.run

    assert await consumer.renew([c]) == {c.job_id: "lost"}
    assert await seed.pel(r, keys, Q) == {c.entry_id: "c2"}
    assert await consumer2.renew([c2]) == {c.job_id: "ok"}
    await assert_invariants(r, keys, [Q])


async def test_renew_reports_lost_once_the_attempt_ended(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    await seed.enqueue(producer, Q)
    c = await seed.claim_one(consumer, Q)
    await seed.complete(consumer, c)
    assert await consumer.renew([c]) == {c.job_id: "lost"}
    assert await seed.pel(r, keys, Q) == {}
    await assert_invariants(r, keys, [Q])


# -- takeover -------------------------------------------------------------------------------


async def test_a_takeover_starts_a_new_attempt_and_fences_the_old_owner(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    consumer: ConsumerStore,
    consumer2: ConsumerStore,
) -> None:
    job = await seed.enqueue(producer, Q, max_attempts=5)
    old = await seed.claim_one(consumer, Q)

    result, _ = await take_over(consumer2, old)

    [new] = result.run
    assert (new.job_id, new.entry_id, new.token, new.attempt) == (job.id, old.entry_id, "c2:2", 2)
    h = await seed.job_hash(r, keys, Q, job.id)
    assert (h["status"], h["worker"], h["token"]) == (b"running", b"c2", b"c2:2")
    assert (h["attempts"], h["deliveries"]) == (b"2", b"2")
    assert await seed.delivery_count(r, keys, Q, old.entry_id) == 2
    [lost] = json.loads(h["history"])
    assert lost["attempt"] == 1
    assert lost["worker"] == "c1"
    assert lost["outcome"] == Outcome.LOST
    assert "c1" in lost["error"]
    assert await seed.pel(r, keys, Q) == {old.entry_id: "c2"}

    # The old owner wakes up: whatever it tries to write is refused and changes nothing.
    before = await seed.job_hash(r, keys, Q, job.id)
    assert await seed.complete(consumer, old, "late") == "stale"
    assert await seed.fail(consumer, old) == "stale"
    assert await seed.fail(consumer, old, retryable=False) == "stale"
    assert await seed.requeue(consumer, old) == "stale"
    assert await seed.job_hash(r, keys, Q, job.id) == before
    assert await seed.pel(r, keys, Q) == {old.entry_id: "c2"}
    assert await r.xlen(keys.queue(Q).stream) == 1
    await assert_invariants(r, keys, [Q])

    assert await seed.complete(consumer2, new, "on time") == "completed"
    loaded = await seed.load_job(r, keys, Q, job.id)
    assert loaded is not None
    assert loaded.result == "on time"
    assert [a.outcome for a in loaded.history] == [Outcome.LOST, Outcome.COMPLETED]
    await assert_invariants(r, keys, [Q])


async def test_a_late_claim_after_a_takeover_starts_nothing(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    consumer: ConsumerStore,
    consumer2: ConsumerStore,
) -> None:
    """c1 read the entry and stalled before claiming it; c2 took it over and started it.
    c1's claim must not start a second attempt (and so fence out c2's)."""
    job = await seed.enqueue(producer, Q)
    [stale_delivery] = await seed.deliver(consumer, Q)
    deliveries = await seed.reclaim(consumer2, Q)
    [running] = (await consumer2.claim(deliveries)).run
    before = await seed.job_hash(r, keys, Q, job.id)

    late = await consumer.claim([stale_delivery])

    assert (late.run, late.poisoned, late.canceled) == ([], [], [])
    assert late.skipped == [(job.id, "running")]
    assert await seed.job_hash(r, keys, Q, job.id) == before
    assert await seed.pel(r, keys, Q) == {running.entry_id: "c2"}
    assert await consumer2.renew([running]) == {job.id: "ok"}
    assert await seed.complete(consumer2, running) == "completed"
    await assert_invariants(r, keys, [Q])


async def test_a_claim_of_an_entry_taken_over_but_not_yet_claimed_starts_nothing(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    consumer: ConsumerStore,
    consumer2: ConsumerStore,
) -> None:
    job = await seed.enqueue(producer, Q)
    [stale_delivery] = await seed.deliver(consumer, Q)
    deliveries = await seed.reclaim(consumer2, Q)

    late = await consumer.claim([stale_delivery])  # c1 first, though c2 holds the entry

    assert late == ClaimResult(skipped=[(job.id, "pending")])
    assert await seed.status_of(r, keys, Q, job.id) is Status.PENDING
    [c2] = (await consumer2.claim(deliveries)).run
    assert (c2.attempt, c2.token) == (1, "c2:1")
    h = await seed.job_hash(r, keys, Q, job.id)
    assert "history" not in h
    await assert_invariants(r, keys, [Q])


async def test_poison_after_max_deliveries_names_the_limit(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    stores = [seed.consumer_store(r, keys, f"w{i}", max_deliveries=2) for i in range(3)]
    job = await seed.enqueue(producer, Q, max_attempts=10)
    first = await seed.claim_one(stores[0], Q)
    second_result, _ = await take_over(stores[1], first)
    [second] = second_result.run
    assert second.attempt == 2

    third, _ = await take_over(stores[2], second)

    assert third == ClaimResult(poisoned=[job.id])
    h = await seed.job_hash(r, keys, Q, job.id)
    assert h["status"] == b"failed"
    assert (h["deliveries"], h["attempts"]) == (b"3", b"2")
    error = h["last_error"].decode()
    assert "max_deliveries=2" in error
    assert "2 attempts were lost" in error
    assert h["lost"] == b"2"
    assert "token" not in h
    assert int(h["finished_at"]) > 0
    history = json.loads(h["history"])
    assert [(a["attempt"], a["worker"], a["outcome"]) for a in history] == [
        (1, "w0", Outcome.LOST),
        (2, "w1", Outcome.LOST),
    ]
    q = keys.queue(Q)
    assert await r.xlen(q.stream) == 0
    assert await seed.pel(r, keys, Q) == {}
    assert await seed.index_statuses(r, keys, Q, job.id) == {Status.FAILED}
    assert 0 < await r.pttl(q.job(job.id)) <= 600_000
    assert await r.zscore(q.expiries, job.id) == int(h["finished_at"]) + 600_000
    assert await seed.complete(stores[1], second) == "stale"
    await assert_invariants(r, keys, [Q])


async def test_a_takeover_of_a_job_asked_to_cancel_ends_it_canceled(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    consumer: ConsumerStore,
    consumer2: ConsumerStore,
) -> None:
    job = await seed.enqueue(producer, Q)
    old = await seed.claim_one(consumer, Q)
    await producer.cancel(job.id)

    result, _ = await take_over(consumer2, old)

    assert result == ClaimResult(canceled=[job.id])
    h = await seed.job_hash(r, keys, Q, job.id)
    assert h["status"] == b"canceled"
    assert "token" not in h
    assert int(h["finished_at"]) > 0
    assert [a["outcome"] for a in json.loads(h["history"])] == [Outcome.LOST]
    q = keys.queue(Q)
    assert await r.xlen(q.stream) == 0
    assert await seed.pel(r, keys, Q) == {}
    assert await seed.index_statuses(r, keys, Q, job.id) == {Status.CANCELED}
    assert await r.pttl(q.job(job.id)) > 0
    assert await seed.fail(consumer, old, outcome=Outcome.CANCELED) == "stale"
    await assert_invariants(r, keys, [Q])


# -- releasing dead consumers ---------------------------------------------------------------


async def consumer_names(r: Redis, keys: Keys) -> set[str]:
    infos: Any = await r.xinfo_consumers(keys.queue(Q).stream, GROUP)
    return {seed._text(i["name"]) for i in infos}


async def test_release_never_deletes_a_consumer_holding_entries(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    await seed.enqueue(producer, Q)
    c = await seed.claim_one(consumer, Q)
    stream = keys.queue(Q).stream
    await r.xgroup_createconsumer(stream, GROUP, "idle-empty")
    await r.xgroup_createconsumer(stream, GROUP, "kept")
    await r.xgroup_createconsumer(stream, GROUP, "janitor")
    janitor = seed.consumer_store(r, keys, "janitor")

    assert await janitor.release_idle_consumers(Q, 60_000, keep={"janitor"}) == []  # too fresh
    released = await janitor.release_idle_consumers(Q, 0, keep={"janitor", "kept"})

    assert released == ["idle-empty"]
    assert await consumer_names(r, keys) == {"c1", "kept", "janitor"}
    assert await seed.pel(r, keys, Q) == {c.entry_id: "c1"}
    # The script refuses on its own, whatever the caller checked before.
    assert await janitor.scripts.release_consumer(r, [stream], ["c1"]) == 0
    assert await consumer_names(r, keys) == {"c1", "kept", "janitor"}
    await assert_invariants(r, keys, [Q])

    await seed.complete(consumer, c)
    assert await janitor.release_idle_consumers(Q, 0, keep={"janitor"}) == ["c1", "kept"]
    assert await consumer_names(r, keys) == {"janitor"}
    await assert_invariants(r, keys, [Q])
