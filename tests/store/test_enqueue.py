"""enqueue.lua through ProducerStore.enqueue: what one new job writes, batches, retries of
the same call, and failures that must leave nothing half-written."""

from __future__ import annotations

import time
from typing import Any

import msgpack
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from conveyor import codec
from conveyor.errors import DuplicateJob
from conveyor.ids import new_job_id
from conveyor.states import Status
from conveyor.store.keys import Keys
from conveyor.store.producer import ENQUEUE_CHUNK, ProducerStore
from conveyor.values import NewJob
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants
from tests.helpers.round_trips import RoundTrips

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE


async def test_a_pending_job_writes_hash_indexes_and_one_stream_entry(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    before = await seed.redis_now_ms(r)
    job = await seed.enqueue(producer, Q, "echo", {"x": [1, 2.5, "é", None, True]})
    after = await seed.redis_now_ms(r)

    assert job.status is Status.PENDING
    h = await seed.job_hash(r, keys, Q, job.id)
    assert h["id"].decode() == job.id
    assert h["type"] == b"echo"
    assert h["queue"] == Q.encode()
    assert h["status"] == b"pending"
    assert msgpack.unpackb(h["payload"]) == {"x": [1, 2.5, "é", None, True]}
    assert h["attempts"] == b"0"
    assert h["deliveries"] == b"0"
    assert before <= int(h["created_at"]) <= after
    assert h["created_at"] == h["updated_at"]
    assert job.created_at == int(h["created_at"])
    # Only what was set on the job: no max_attempts, timeout_ms, correlation_id, run_at.
    assert set(h) == {
        "id", "type", "queue", "payload", "attempts", "deliveries",
        "created_at", "updated_at", "status", "entry",
    }  # fmt: skip

    q = keys.queue(Q)
    entries: Any = await r.xrange(q.stream)
    assert [(e.decode(), f) for e, f in entries] == [
        (h["entry"].decode(), {b"id": job.id.encode()})
    ]
    assert await r.xlen(q.stream) == 1
    assert await seed.index_statuses(r, keys, Q, job.id) == {Status.PENDING}
    assert await seed.in_all_index(r, keys, Q, job.id)
    assert await r.zscore(q.all_index, job.id) == 0
    assert await seed.delayed_score(r, keys, Q, job.id) is None
    assert await r.pttl(q.job(job.id)) == -1
    assert await r.smembers(keys.queues) == {Q.encode()}
    await assert_invariants(r, keys, [Q])


async def test_optional_fields_are_written_only_when_given(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    job = await seed.enqueue(
        producer, Q, max_attempts=7, timeout_seconds=1.5, correlation_id="req-1"
    )
    h = await seed.job_hash(r, keys, Q, job.id)
    assert h["max_attempts"] == b"7"
    assert h["timeout_ms"] == b"1500"
    assert h["correlation_id"] == b"req-1"
    loaded = await seed.load_job(r, keys, Q, job.id)
    assert loaded is not None
    assert (loaded.max_attempts, loaded.timeout_seconds, loaded.correlation_id) == (7, 1.5, "req-1")
    await assert_invariants(r, keys, [Q])


async def test_a_delayed_job_is_scheduled_in_the_delayed_zset(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    job = await seed.enqueue(producer, Q, delay_seconds=60)
    h = await seed.job_hash(r, keys, Q, job.id)
    assert job.status is Status.SCHEDULED
    assert h["status"] == b"scheduled"
    assert "entry" not in h
    due = int(h["run_at"])
    assert job.run_at == due
    assert due - int(h["created_at"]) == pytest.approx(60_000, abs=5_000)
    assert await seed.delayed_score(r, keys, Q, job.id) == due
    assert await r.xlen(keys.queue(Q).stream) == 0
    assert await seed.index_statuses(r, keys, Q, job.id) == {Status.SCHEDULED}
    assert await seed.in_all_index(r, keys, Q, job.id)
    await assert_invariants(r, keys, [Q])


@pytest.mark.parametrize(
    ("due_offset_ms", "want"),
    [
        (None, Status.PENDING),
        (-60_000, Status.PENDING),  # a due time in the past means now
        (0, Status.PENDING),  # due exactly now (or a moment ago by the time it runs)
        (60_000, Status.SCHEDULED),
    ],
)
async def test_the_due_time_decides_pending_or_scheduled(
    r: Redis, keys: Keys, producer: ProducerStore, due_offset_ms: int | None, want: Status
) -> None:
    now = await seed.redis_now_ms(r)
    due = None if due_offset_ms is None else now + due_offset_ms
    spec = NewJob(new_job_id(), "echo", Q, codec.encode(None), due_ms=due)
    [job] = await producer.enqueue([spec])
    assert job.status is want
    assert await seed.status_of(r, keys, Q, job.id) is want
    assert await r.xlen(keys.queue(Q).stream) == (1 if want is Status.PENDING else 0)
    assert await r.zcard(keys.queue(Q).delayed) == (1 if want is Status.SCHEDULED else 0)
    await assert_invariants(r, keys, [Q])


async def test_a_delay_counts_from_redis_time_not_the_producers_clock(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    """`delay_ms` travels as '+<ms>' and the script adds it to its own Redis TIME: the
    producer's clock (which may be skewed) plays no part."""
    spec = NewJob(new_job_id(), "echo", Q, codec.encode(None), delay_ms=5_000)
    [job] = await producer.enqueue([spec])
    h = await seed.job_hash(r, keys, Q, job.id)
    created, run_at = int(h["created_at"]), int(h["run_at"])
    assert run_at - created == 5_000
    assert await r.zscore(keys.queue(Q).delayed, job.id) == run_at
    assert job.status is Status.SCHEDULED
    assert job.run_at is not None
    assert job.created_at is not None
    await assert_invariants(r, keys, [Q])


async def test_a_malformed_due_argument_writes_nothing(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    with pytest.raises(ResponseError, match="malformed due time; nothing was written"):
        await seed.enqueue_with_second_job_arg(r, producer, Q, 7, "+soon")
    assert [k async for k in r.scan_iter(match=f"{keys.prefix}:*")] == []


async def test_a_batch_spans_queues_and_keeps_the_callers_order(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    specs = [
        seed.spec("a", payload=0),
        seed.spec("b", payload=1, delay_seconds=30),
        seed.spec("a", payload=2),
        seed.spec("b", payload=3),
    ]
    jobs = await producer.enqueue(specs)
    assert [j.id for j in jobs] == [s.id for s in specs]
    assert [j.status for j in jobs] == [
        Status.PENDING, Status.SCHEDULED, Status.PENDING, Status.PENDING,
    ]  # fmt: skip
    assert await seed.stream_job_ids(r, keys, "a") == [specs[0].id, specs[2].id]
    assert await seed.stream_job_ids(r, keys, "b") == [specs[3].id]
    assert await r.zrange(keys.queue("b").delayed, 0, -1) == [specs[1].id.encode()]
    assert await producer.queues() == ["a", "b"]
    await assert_invariants(r, keys, ["a", "b"])


async def test_more_jobs_than_one_chunk_are_all_created(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    n = 2 * ENQUEUE_CHUNK + 7
    jobs = await seed.enqueue_many(producer, n, Q)
    assert len({j.id for j in jobs}) == n
    assert await r.xlen(keys.queue(Q).stream) == n
    assert await r.zcard(keys.queue(Q).index(Status.PENDING)) == n
    assert await r.zcard(keys.queue(Q).all_index) == n
    assert await seed.stream_job_ids(r, keys, Q) == [j.id for j in jobs]
    await assert_invariants(r, keys, [Q])


async def test_an_id_repeated_within_a_batch_is_refused_and_nothing_is_written(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    first = seed.spec(Q)
    dup = NewJob(first.id, "other", Q, codec.encode(1))
    with pytest.raises(DuplicateJob) as exc:
        await producer.enqueue([seed.spec(Q), first, dup])
    assert exc.value.job_id == first.id
    q = keys.queue(Q)
    assert await r.exists(q.job(first.id)) == 0
    assert await r.xlen(q.stream) == 0
    assert await r.zcard(q.all_index) == 0
    assert await r.zcard(q.index(Status.PENDING)) == 0
    await assert_invariants(r, keys, [Q])


async def test_sending_the_same_call_again_creates_nothing_new(
    r: Redis, keys: Keys, producer: ProducerStore, consumer
) -> None:
    """A client retry after a lost reply: the existing job is reported, not duplicated."""
    specs = [seed.spec(Q, payload=1), seed.spec(Q, payload=2, delay_seconds=30)]
    await producer.enqueue(specs)
    claimed = await seed.claim_one(consumer, Q)
    before = [await seed.job_hash(r, keys, Q, s.id) for s in specs]

    again = await producer.enqueue(specs)

    assert [j.status for j in again] == [Status.RUNNING, Status.SCHEDULED]
    assert [await seed.job_hash(r, keys, Q, s.id) for s in specs] == before
    assert await r.xlen(keys.queue(Q).stream) == 1
    assert await seed.pel(r, keys, Q) == {claimed.entry_id: "c1"}
    assert await r.zcard(keys.queue(Q).delayed) == 1
    await assert_invariants(r, keys, [Q])


async def test_only_the_first_job_of_the_earliest_due_time_wakes_the_schedulers(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    pubsub = r.pubsub()
    await pubsub.subscribe(keys.schedule_channel)
    try:
        first: Any = await pubsub.get_message(timeout=1)
        assert first["type"] == "subscribe"
        await seed.enqueue(producer, Q, delay_seconds=60)  # first delayed job: wake
        await seed.enqueue(producer, Q, delay_seconds=120)  # later than the head: quiet
        await seed.enqueue(producer, Q, delay_seconds=30)  # earlier than the head: wake
        await seed.enqueue(producer, Q)  # not delayed: quiet
        messages = []
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if msg:
                messages.append(msg["data"])
        assert messages == [Q.encode(), Q.encode()]
    finally:
        await pubsub.aclose()
    await assert_invariants(r, keys, [Q])


# -- wrong-type keys: a failing script must not leave a half-written job --------------------


async def _nothing_written(r: Redis, keys: Keys, job_ids: list[str]) -> None:
    q = keys.queue(Q)
    for job_id in job_ids:
        assert await r.exists(q.job(job_id)) == 0, f"job hash {job_id} was written"
        assert await r.zscore(q.all_index, job_id) is None
        assert await seed.index_statuses(r, keys, Q, job_id) == set()
        assert await r.zscore(q.delayed, job_id) is None


async def test_a_stream_key_of_the_wrong_type_fails_enqueue_without_a_job_hash(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    q = keys.queue(Q)
    await r.set(q.stream, "not a stream")
    spec = seed.spec(Q)
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await producer.enqueue([spec])
    await _nothing_written(r, keys, [spec.id])
    assert await r.get(q.stream) == b"not a stream"
    await r.delete(q.stream)
    await assert_invariants(r, keys, [Q])


async def test_a_failing_batch_writes_none_of_its_jobs(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    """Atomic per queue: a delayed job earlier in the batch must not survive the failure of
    a later job's XADD."""
    q = keys.queue(Q)
    await r.set(q.stream, "not a stream")
    specs = [seed.spec(Q, delay_seconds=30), seed.spec(Q)]
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await producer.enqueue(specs)
    await _nothing_written(r, keys, [s.id for s in specs])
    await r.delete(q.stream)
    await assert_invariants(r, keys, [Q])


@pytest.mark.parametrize("key", ["delayed", "all_index", "pending_index", "scheduled_index"])
async def test_an_index_key_of_the_wrong_type_fails_enqueue_without_writes(
    r: Redis, keys: Keys, producer: ProducerStore, key: str
) -> None:
    q = keys.queue(Q)
    name = {
        "delayed": q.delayed,
        "all_index": q.all_index,
        "pending_index": q.index(Status.PENDING),
        "scheduled_index": q.index(Status.SCHEDULED),
    }[key]
    await r.set(name, "wrong")
    specs = [seed.spec(Q, delay_seconds=30), seed.spec(Q)]
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await producer.enqueue(specs)
    await r.delete(name)
    await _nothing_written(r, keys, [s.id for s in specs])
    assert await r.xlen(q.stream) == 0
    await assert_invariants(r, keys, [Q])


async def test_a_job_key_of_the_wrong_type_fails_the_whole_batch(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    specs = [seed.spec(Q), seed.spec(Q, delay_seconds=30), seed.spec(Q)]
    q = keys.queue(Q)
    await r.set(q.job(specs[2].id), "squatter")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await producer.enqueue(specs)
    await _nothing_written(r, keys, [s.id for s in specs[:2]])
    assert await r.xlen(q.stream) == 0
    await r.delete(q.job(specs[2].id))
    await assert_invariants(r, keys, [Q])


async def test_a_create_into_a_known_queue_is_one_round_trip(
    r: Redis, keys: Keys, producer: ProducerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed.enqueue(producer, "warm")  # the script is loaded: no NOSCRIPT retry below
    trips = RoundTrips(monkeypatch)
    [job] = await producer.enqueue([seed.spec("warm")])
    assert trips.count == 1  # the queue's generation is known: the script alone
    [fresh] = await producer.enqueue([seed.spec("fresh")])
    assert trips.count == 3  # a new queue: its registration, then the script
    assert await r.sismember(keys.queues, "fresh")
    assert await seed.status_of(r, keys, "warm", job.id) == Status.PENDING
    assert await seed.status_of(r, keys, "fresh", fresh.id) == Status.PENDING
    await assert_invariants(r, keys, ["warm", "fresh"])


async def test_a_create_with_an_idempotency_key_reads_the_key_first(
    r: Redis, keys: Keys, producer: ProducerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed.enqueue(producer, "warm")
    trips = RoundTrips(monkeypatch)
    await producer.create([seed.spec("warm", idempotency_key="k1")])
    assert trips.count == 2  # the key, then the script (the queue's generation is known)
