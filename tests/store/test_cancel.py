"""cancel.lua through ProducerStore.cancel: given the job's status, what cancel does."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from conveyor.errors import InvalidTransition, JobNotFound
from conveyor.ids import new_job_id
from conveyor.job import Outcome
from conveyor.states import Status
from conveyor.store.consumer import ClaimResult, ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.values import CancelOutcome
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE
TTL_MS = 600_000


async def make(status: str, producer: ProducerStore, consumer: ConsumerStore) -> str:
    """A job in the given situation; returns its id."""
    if status == "scheduled":
        [job] = await seed.enqueue_scheduled(producer, Q)
        return job.id
    job = await seed.enqueue(producer, Q, max_attempts=2)
    if status == "pending":
        return job.id
    if status == "canceled":
        await producer.cancel(job.id)
        return job.id
    if status == "pending_delivered":  # read by a worker that has not claimed it yet
        await seed.deliver(consumer, Q)
        return job.id
    c = await seed.claim_one(consumer, Q)
    if status == "running":
        return job.id
    if status == "retrying":
        await seed.fail(consumer, c, delay_ms=60_000)
    elif status == "completed":
        await seed.complete(consumer, c)
    elif status == "failed":
        await seed.fail(consumer, c, retryable=False)
    return job.id


@pytest.mark.parametrize("given", ["scheduled", "pending", "pending_delivered", "retrying"])
async def test_a_job_that_is_not_running_is_canceled_at_once(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, given: str
) -> None:
    job_id = await make(given, producer, consumer)
    before = await seed.job_hash(r, keys, Q, job_id)

    outcome, job = await producer.cancel(job_id)

    assert outcome is CancelOutcome.CANCELED
    assert job.status is Status.CANCELED
    q = keys.queue(Q)
    h = await seed.job_hash(r, keys, Q, job_id)
    assert h["status"] == b"canceled"
    assert int(h["finished_at"]) == int(h["updated_at"]) >= int(before["updated_at"])
    assert h.get("history") == before.get("history")  # no attempt ended here
    assert await r.xlen(q.stream) == 0
    assert await seed.pel(r, keys, Q) == {}
    assert await seed.delayed_score(r, keys, Q, job_id) is None
    assert await seed.index_statuses(r, keys, Q, job_id) == {Status.CANCELED}
    assert 0 < await r.pttl(q.job(job_id)) <= TTL_MS
    assert await r.zscore(q.expiries, job_id) == int(h["finished_at"]) + TTL_MS
    await assert_invariants(r, keys, [Q])


async def test_a_delivery_of_a_job_canceled_before_its_claim_is_skipped(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q)
    deliveries = await seed.deliver(consumer, Q)
    await producer.cancel(job.id)
    assert await consumer.claim(deliveries) == ClaimResult(skipped=[(job.id, "canceled")])
    assert await seed.status_of(r, keys, Q, job.id) is Status.CANCELED
    await assert_invariants(r, keys, [Q])


async def test_a_running_job_is_asked_to_stop_and_its_worker_told(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job_id = await make("running", producer, consumer)
    pubsub = r.pubsub()
    await pubsub.subscribe(keys.cancel_channel)
    try:
        await pubsub.get_message(timeout=1)  # the subscribe confirmation
        outcome, job = await producer.cancel(job_id)
        msg = await _next_message(pubsub)
    finally:
        await pubsub.aclose()

    assert outcome is CancelOutcome.REQUESTED
    assert (job.status, job.cancel_requested) == (Status.RUNNING, True)
    assert msg == job_id.encode()
    h = await seed.job_hash(r, keys, Q, job_id)
    assert (h["status"], h["cancel_requested"]) == (b"running", b"1")
    assert "finished_at" not in h
    assert len(await seed.pel(r, keys, Q)) == 1
    assert await seed.index_statuses(r, keys, Q, job_id) == {Status.RUNNING}
    assert await r.pttl(keys.queue(Q).job(job_id)) == -1
    # Asking again is harmless.
    assert (await producer.cancel(job_id))[0] is CancelOutcome.REQUESTED
    await assert_invariants(r, keys, [Q])


async def test_a_running_job_asked_to_stop_ends_canceled_when_its_worker_stops(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q)
    c = await seed.claim_one(consumer, Q)
    await producer.cancel(job.id)
    word = await seed.fail(consumer, c, error="canceled by request", outcome=Outcome.CANCELED)
    assert word == "canceled"
    h = await seed.job_hash(r, keys, Q, job.id)
    assert [i["outcome"] for i in json.loads(h["history"])] == [Outcome.CANCELED]
    assert await seed.index_statuses(r, keys, Q, job.id) == {Status.CANCELED}
    await assert_invariants(r, keys, [Q])


async def test_a_running_job_that_completes_despite_the_request_is_completed(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q)
    c = await seed.claim_one(consumer, Q)
    await producer.cancel(job.id)
    assert await seed.complete(consumer, c, "done anyway") == "completed"
    assert await seed.status_of(r, keys, Q, job.id) is Status.COMPLETED
    await assert_invariants(r, keys, [Q])


@pytest.mark.parametrize("given", ["completed", "failed", "canceled"])
async def test_a_finished_job_cannot_be_canceled(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, given: str
) -> None:
    job_id = await make(given, producer, consumer)
    before = await seed.job_hash(r, keys, Q, job_id)
    with pytest.raises(InvalidTransition) as exc:
        await producer.cancel(job_id)
    assert (exc.value.current, exc.value.event) == (given, "cancel")
    assert await seed.job_hash(r, keys, Q, job_id) == before
    await assert_invariants(r, keys, [Q])


async def test_an_unknown_job_is_not_found(r: Redis, keys: Keys, producer: ProducerStore) -> None:
    other = await seed.enqueue(producer, Q)
    unknown = new_job_id()
    with pytest.raises(JobNotFound) as exc:
        await producer.cancel(unknown)
    assert exc.value.job_id == unknown
    assert await r.exists(keys.queue(Q).job(unknown)) == 0
    assert await seed.status_of(r, keys, Q, other.id) is Status.PENDING
    await assert_invariants(r, keys, [Q])


async def test_the_script_reports_a_job_that_vanished_after_the_lookup(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    q = keys.queue(Q)
    job_id = new_job_id()
    reply = await producer.scripts.cancel(
        r, [*q.header(), q.job(job_id)], [job_id, TTL_MS, keys.cancel_channel]
    )
    assert reply == [b"missing"]
    assert await r.exists(q.job(job_id)) == 0
    await assert_invariants(r, keys, [Q])


async def _next_message(pubsub: Any) -> bytes:
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if msg:
            return bytes(msg["data"])
    raise AssertionError("no message on the cancel channel")
