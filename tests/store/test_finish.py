"""Ending attempts through ConsumerStore.finish: complete.lua, fail.lua and requeue.lua,
including stale tokens, the retry decision table and one-round-trip batches."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import msgpack
import pytest
from redis.asyncio import Redis

from conveyor import codec
from conveyor.job import HISTORY_LIMIT, Outcome
from conveyor.states import Status
from conveyor.store.consumer import Completion, ConsumerStore, Failure
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.store.scheduling import SchedulerStore
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE
TTL_MS = 600_000


async def assert_finished(r: Redis, keys: Keys, job_id: str, status: Status) -> dict[str, bytes]:
    """The common end state of a terminal job; returns its hash."""
    q = keys.queue(Q)
    h = await seed.job_hash(r, keys, Q, job_id)
    assert h["status"] == status.value.encode()
    assert "token" not in h
    finished = int(h["finished_at"])
    assert finished == int(h["updated_at"])
    assert await r.xlen(q.stream) == 0
    assert await seed.pel(r, keys, Q) == {}
    assert await seed.delayed_score(r, keys, Q, job_id) is None
    assert await seed.index_statuses(r, keys, Q, job_id) == {status}
    assert await seed.in_all_index(r, keys, Q, job_id)
    assert 0 < await r.pttl(q.job(job_id)) <= TTL_MS
    assert await r.zscore(q.expiries, job_id) == finished + TTL_MS
    return h


# -- complete -------------------------------------------------------------------------------


async def test_complete_records_the_result_and_acks_the_entry(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q)
    c = await seed.claim_one(consumer, Q)

    assert await seed.complete(consumer, c, {"ok": [1, 2]}) == "completed"

    h = await assert_finished(r, keys, job.id, Status.COMPLETED)
    assert msgpack.unpackb(h["result"]) == {"ok": [1, 2]}
    [item] = json.loads(h["history"])
    assert item == {
        "attempt": 1,
        "worker": "c1",
        "started_at": int(h["started_at"]),
        "finished_at": int(h["finished_at"]),
        "outcome": Outcome.COMPLETED,
    }
    assert "last_error" not in h
    await assert_invariants(r, keys, [Q])


async def test_complete_twice_is_stale_the_second_time(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q)
    c = await seed.claim_one(consumer, Q)
    assert await seed.complete(consumer, c, 1) == "completed"
    before = await seed.job_hash(r, keys, Q, job.id)
    assert await seed.complete(consumer, c, 2) == "stale"
    assert await seed.job_hash(r, keys, Q, job.id) == before
    await assert_invariants(r, keys, [Q])


@pytest.mark.parametrize("action", ["complete", "fail", "requeue"])
async def test_a_wrong_token_writes_nothing_and_keeps_the_entry(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, action: str
) -> None:
    job = await seed.enqueue(producer, Q)
    c = await seed.claim_one(consumer, Q)
    forged = replace(c, token="c1:99")
    before = await seed.job_hash(r, keys, Q, job.id)

    if action == "complete":
        word = await seed.complete(consumer, forged)
    elif action == "fail":
        word = await seed.fail(consumer, forged)
    else:
        word = await seed.requeue(consumer, forged)

    assert word == "stale"
    assert await seed.job_hash(r, keys, Q, job.id) == before
    assert await seed.pel(r, keys, Q) == {c.entry_id: "c1"}
    assert await r.xlen(keys.queue(Q).stream) == 1
    await assert_invariants(r, keys, [Q])


# -- fail: the retry decision, table-driven --------------------------------------------------


@pytest.mark.parametrize(
    ("job_max", "limit", "retryable", "cancel", "want"),
    [
        (3, None, True, False, Status.RETRYING),  # attempts left on the job's own limit
        (1, None, True, False, Status.FAILED),  # the only attempt was used
        (None, None, True, False, Status.FAILED),  # no limit anywhere: one attempt
        (None, 3, True, False, Status.RETRYING),  # the worker's limit applies
        (5, 1, True, False, Status.FAILED),  # the worker's limit overrides the job's
        (1, 5, True, False, Status.RETRYING),  # ...in both directions
        (3, None, False, False, Status.FAILED),  # permanent error / unknown type
        (3, None, True, True, Status.CANCELED),  # cancel requested wins over a retry
        (3, None, False, True, Status.CANCELED),
    ],
)
async def test_fail_decides_between_retrying_failed_and_canceled(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    consumer: ConsumerStore,
    job_max: int | None,
    limit: int | None,
    retryable: bool,
    cancel: bool,
    want: Status,
) -> None:
    job = await seed.enqueue(producer, Q, max_attempts=job_max)
    c = await seed.claim_one(consumer, Q)
    if cancel:
        await producer.cancel(job.id)
    before = await seed.redis_now_ms(r)

    word = await seed.fail(
        consumer,
        c,
        error="ValueError: bad",
        retryable=retryable,
        delay_ms=5_000,
        max_attempts=limit,
    )

    assert word == want.value
    q = keys.queue(Q)
    if want is Status.RETRYING:
        h = await seed.job_hash(r, keys, Q, job.id)
        due = int(h["next_run_at"])
        assert before + 5_000 <= due <= await seed.redis_now_ms(r) + 5_000
        assert await seed.delayed_score(r, keys, Q, job.id) == due
        assert await r.xlen(q.stream) == 0
        assert await seed.pel(r, keys, Q) == {}
        assert await seed.index_statuses(r, keys, Q, job.id) == {Status.RETRYING}
        assert await r.pttl(q.job(job.id)) == -1
        assert not {"worker", "started_at", "token"} & set(h)
        assert "finished_at" not in h
    else:
        h = await assert_finished(r, keys, job.id, want)
    assert h["last_error"] == b"ValueError: bad"
    [item] = json.loads(h["history"])
    assert item["attempt"] == 1
    assert item["worker"] == "c1"
    assert item["outcome"] == (Outcome.CANCELED if cancel else Outcome.FAILED)
    assert item["error"] == "ValueError: bad"
    await assert_invariants(r, keys, [Q])


async def test_a_timed_out_attempt_is_recorded_as_such(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q, max_attempts=1)
    c = await seed.claim_one(consumer, Q)
    word = await seed.fail(consumer, c, error="timed out after 1s", outcome=Outcome.TIMED_OUT)
    assert word == "failed"
    loaded = await seed.load_job(r, keys, Q, job.id)
    assert loaded is not None
    assert [(a.outcome, a.error) for a in loaded.history] == [
        (Outcome.TIMED_OUT, "timed out after 1s")
    ]
    await assert_invariants(r, keys, [Q])


async def test_retries_run_until_attempts_are_used_up(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    consumer: ConsumerStore,
    scheduler: SchedulerStore,
) -> None:
    job = await seed.enqueue(producer, Q, max_attempts=3)
    words = []
    for attempt in (1, 2, 3):
        c = await seed.claim_one(consumer, Q)
        assert (c.attempt, c.token) == (attempt, f"c1:{attempt}")
        words.append(await seed.fail(consumer, c, error=f"E{attempt}", delay_ms=0))
        await assert_invariants(r, keys, [Q])
        if words[-1] == "retrying":
            h = await seed.job_hash(r, keys, Q, job.id)
            result = await scheduler.promote_due(Q, await seed.redis_now_ms(r), 10)
            assert result.promoted == 1
            assert c.ready_at_ms <= int(h["next_run_at"])
    assert words == ["retrying", "retrying", "failed"]
    loaded = await seed.load_job(r, keys, Q, job.id)
    assert loaded is not None
    assert (loaded.status, loaded.attempts, loaded.deliveries) == (Status.FAILED, 3, 3)
    assert [a.error for a in loaded.history] == ["E1", "E2", "E3"]
    assert loaded.last_error == "E3"
    await assert_invariants(r, keys, [Q])


async def test_history_keeps_the_last_attempts_only(
    r: Redis, keys: Keys, producer: ProducerStore, scheduler: SchedulerStore
) -> None:
    consumer = seed.consumer_store(r, keys, "c1", max_deliveries=1000)
    runs = HISTORY_LIMIT + 5
    job = await seed.enqueue(producer, Q, max_attempts=runs + 1)
    for _ in range(runs):
        c = await seed.claim_one(consumer, Q)
        assert await seed.fail(consumer, c, error=f"E{c.attempt}") == "retrying"
        await scheduler.promote_due(Q, await seed.redis_now_ms(r), 10)
    c = await seed.claim_one(consumer, Q)
    assert await seed.complete(consumer, c) == "completed"
    h = await seed.job_hash(r, keys, Q, job.id)
    history = json.loads(h["history"])
    assert len(history) == HISTORY_LIMIT
    assert [a["attempt"] for a in history] == list(range(runs + 2 - HISTORY_LIMIT, runs + 2))
    assert history[-1]["outcome"] == Outcome.COMPLETED
    await assert_invariants(r, keys, [Q])


# -- requeue --------------------------------------------------------------------------------


async def test_requeue_returns_the_job_without_charging_the_attempt(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q)
    c = await seed.claim_one(consumer, Q)

    assert await seed.requeue(consumer, c) == "pending"

    h = await seed.job_hash(r, keys, Q, job.id)
    assert h["status"] == b"pending"
    assert h["entry"].decode() != c.entry_id
    # The attempt is not charged; deliveries keeps counting so tokens are never reused.
    assert (h["attempts"], h["deliveries"]) == (b"0", b"1")
    assert not {"token", "worker", "started_at", "finished_at"} & set(h)
    [item] = json.loads(h["history"])
    assert (item["attempt"], item["worker"], item["outcome"]) == (1, "c1", Outcome.RETURNED)
    entries: Any = await r.xrange(keys.queue(Q).stream)
    assert [e.decode() for e, _ in entries] == [h["entry"].decode()]
    assert await seed.pel(r, keys, Q) == {}
    assert await seed.index_statuses(r, keys, Q, job.id) == {Status.PENDING}
    assert await r.pttl(keys.queue(Q).job(job.id)) == -1
    await assert_invariants(r, keys, [Q])

    again = await seed.claim_one(consumer, Q)
    # A new token, even for the same consumer: a resent finish of the returned attempt
    # ("c1:1") can never touch the new one.
    assert (again.attempt, again.token, again.entry_id) == (1, "c1:2", h["entry"].decode())
    await assert_invariants(r, keys, [Q])


async def test_requeue_of_a_job_asked_to_cancel_ends_it_canceled(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q)
    c = await seed.claim_one(consumer, Q)
    await producer.cancel(job.id)
    assert await seed.requeue(consumer, c) == "canceled"
    h = await assert_finished(r, keys, job.id, Status.CANCELED)
    [item] = json.loads(h["history"])
    assert (item["outcome"], item["error"]) == (Outcome.CANCELED, "canceled during shutdown")
    await assert_invariants(r, keys, [Q])


# -- one round trip for everything ----------------------------------------------------------


async def test_one_finish_call_ends_attempts_of_several_kinds_and_queues(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    for q in ("a", "b"):
        await seed.enqueue_many(producer, 3, q, max_attempts=2)
    claimed = await seed.claim_all(consumer, "a") + await seed.claim_all(consumer, "b")
    assert len(claimed) == 6
    a1, a2, a3, b1, b2, b3 = claimed

    outcome = await consumer.finish(
        completions=[Completion(a1, codec.encode("A1")), Completion(b1, codec.encode("B1"))],
        failures=[
            Failure(a2, "E", Outcome.FAILED, True, 60_000),
            Failure(b2, "E", Outcome.FAILED, False, 0),
        ],
        requeues=[a3, b3],
        schedule_channel=keys.schedule_channel,
    )

    assert outcome == {
        a1.job_id: "completed",
        b1.job_id: "completed",
        a2.job_id: "retrying",
        b2.job_id: "failed",
        a3.job_id: "pending",
        b3.job_id: "pending",
    }
    for c in claimed:
        assert await seed.status_of(r, keys, c.queue, c.job_id) == Status(outcome[c.job_id])
    assert await seed.stream_job_ids(r, keys, "a") == [a3.job_id]
    assert await seed.stream_job_ids(r, keys, "b") == [b3.job_id]
    await assert_invariants(r, keys, ["a", "b"])


async def test_finishing_nothing_sends_nothing(consumer: ConsumerStore) -> None:
    assert await consumer.finish(schedule_channel="unused") == {}


async def test_retries_that_ended_normally_do_not_count_as_poison(
    r: Redis, keys: Keys, producer: ProducerStore, scheduler: SchedulerStore
) -> None:
    consumer = seed.consumer_store(r, keys, "c1", max_deliveries=2)
    job = await seed.enqueue(producer, Q, max_attempts=4)
    words = []
    for _ in range(4):
        [d] = await seed.deliver(consumer, Q)
        result = await consumer.claim([d])
        if not result.run:
            break
        words.append(await seed.fail(consumer, result.run[0]))
        await scheduler.promote_due(Q, await seed.redis_now_ms(r), 10)
    assert words == ["retrying", "retrying", "retrying", "failed"]
    loaded = await seed.load_job(r, keys, Q, job.id)
    assert loaded is not None
    assert loaded.attempts == 4
    await assert_invariants(r, keys, [Q])
