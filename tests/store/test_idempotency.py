"""Idempotency keys in enqueue.lua through ProducerStore.create: a repeat returns the first
job, another request under the same key is refused with nothing written, and concurrent
identical creates make one job."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from conveyor.errors import IdempotencyConflict
from conveyor.states import Status
from conveyor.store.consumer import ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.producer import ENQUEUE_CHUNK, ProducerStore
from conveyor.values import Created, NewJob
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants
from tests.helpers.redis_server import RedisServer

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE
TTL_S = 3600


@pytest.fixture
def producer(r: Redis, keys: Keys) -> ProducerStore:
    return ProducerStore(r, keys, result_ttl_seconds=600, idempotency_ttl_seconds=TTL_S)


def ispec(key: str | None, queue: str = Q, payload: Any = None, **kw: Any) -> NewJob:
    return seed.spec(queue, kw.pop("type", seed.DEFAULT_TYPE), payload, idempotency_key=key, **kw)


async def create_one(producer: ProducerStore, spec: NewJob) -> Created:
    [created] = await producer.create([spec])
    return created


async def snapshot(r: Redis, keys: Keys) -> dict[str, Any]:
    """Every key of the test's prefix with its serialized value, but the queue names (a
    call registers its queues before it creates anything, refused or not)."""
    out: dict[str, Any] = {}
    async for key in r.scan_iter(match=f"{keys.prefix}:*", count=1000):
        if key.decode() != keys.queues:
            out[key.decode()] = await r.dump(key)
    return out


async def idem_value(r: Redis, keys: Keys, key: str, queue: str = Q) -> str | None:
    value: Any = await r.get(keys.queue(queue).idempotency(key))
    return None if value is None else value.decode()


async def test_a_repeat_returns_the_original_job_as_stored_and_writes_nothing(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    first = await create_one(producer, ispec("order-1", payload={"n": 1}, max_attempts=3))
    assert first.created
    await seed.claim_one(consumer, Q)
    before = await snapshot(r, keys)

    again = await create_one(producer, ispec("order-1", payload={"n": 1}, max_attempts=3))

    assert not again.created
    assert again.job.id == first.job.id
    assert again.job.status is Status.RUNNING  # read back, not rebuilt from the request
    assert again.job == await seed.load_job(r, keys, Q, first.job.id)
    assert again.job.worker == "c1"
    assert await snapshot(r, keys) == before
    assert await r.zcard(keys.queue(Q).all_index) == 1
    await assert_invariants(r, keys, [Q])


async def test_the_key_holds_the_job_and_fingerprint_with_the_configured_ttl(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    spec = ispec("k.1:x_y-z")
    created = await create_one(producer, spec)
    assert await idem_value(r, keys, "k.1:x_y-z") == f"{created.job.id} {spec.fingerprint}"
    ttl = await r.pttl(keys.queue(Q).idempotency("k.1:x_y-z"))
    assert TTL_S * 1000 - 5_000 < ttl <= TTL_S * 1000
    # A repeat does not extend the key's life.
    await r.pexpire(keys.queue(Q).idempotency("k.1:x_y-z"), 50_000)
    await create_one(producer, ispec("k.1:x_y-z"))
    assert await r.pttl(keys.queue(Q).idempotency("k.1:x_y-z")) <= 50_000
    await assert_invariants(r, keys, [Q])


SAME = "repeat"
OTHER = "conflict"


@pytest.mark.parametrize(
    ("first", "second", "want"),
    [
        ({"payload": {"a": 1}}, {"payload": {"a": 1}}, SAME),
        ({"payload": {"a": 1, "b": 2}}, {"payload": {"b": 2, "a": 1}}, SAME),
        ({"payload": {"a": 1}}, {"payload": {"a": 2}}, OTHER),
        ({"payload": 1}, {"payload": 1.0}, OTHER),  # a different payload for the handler
        ({"type": "echo"}, {"type": "other"}, OTHER),
        ({"max_attempts": 3}, {"max_attempts": 4}, OTHER),
        ({"max_attempts": 3}, {}, OTHER),
        ({"timeout_seconds": 5}, {"timeout_seconds": 5.0}, SAME),
        ({"delay_seconds": 60}, {"delay_seconds": 60}, SAME),  # not the due time: the request
        ({"delay_seconds": 60}, {"delay_seconds": 61}, OTHER),
        ({"correlation_id": "a"}, {"correlation_id": "b"}, SAME),  # not part of the request
    ],
    ids=lambda v: str(v),
)
async def test_a_repeat_needs_the_same_request(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    first: dict[str, Any],
    second: dict[str, Any],
    want: str,
) -> None:
    original = await create_one(producer, ispec("key", **first))
    before = await snapshot(r, keys)
    if want == SAME:
        again = await create_one(producer, ispec("key", **second))
        assert (again.created, again.job.id) == (False, original.job.id)
    else:
        with pytest.raises(IdempotencyConflict) as exc:
            await producer.create([ispec("key", **second)])
        assert (exc.value.key, exc.value.job_id) == ("key", original.job.id)
    assert await snapshot(r, keys) == before
    await assert_invariants(r, keys, [Q])


async def test_a_conflict_refuses_the_whole_chunk(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    original = await create_one(producer, ispec("used", payload=1))
    before = await snapshot(r, keys)
    batch = [ispec(None, payload=0), ispec("fresh", payload=0), ispec("used", payload=2)]
    with pytest.raises(IdempotencyConflict) as exc:
        await producer.create(batch)
    assert (exc.value.key, exc.value.job_id) == ("used", original.job.id)
    assert await snapshot(r, keys) == before
    assert await idem_value(r, keys, "fresh") is None
    await assert_invariants(r, keys, [Q])


async def test_a_conflict_seen_before_writing_stops_every_queue(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    await create_one(producer, ispec("used", "b", payload=1))
    before = await snapshot(r, keys)
    with pytest.raises(IdempotencyConflict):
        await producer.create([ispec(None, "a"), ispec("k", "a"), ispec("used", "b", payload=2)])
    assert await snapshot(r, keys) == before
    assert await r.exists(keys.queue("a").stream) == 0
    await assert_invariants(r, keys, ["a", "b"])


async def test_a_batch_mixes_new_jobs_and_repeats(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    old = await create_one(producer, ispec("old", payload="o"))
    batch = [
        ispec(None, payload=0),
        ispec("old", payload="o"),
        ispec("new", payload="n", delay_seconds=60),
        ispec("new", payload="n", delay_seconds=60),
        ispec("other", payload="x"),
    ]
    out = await producer.create(batch)

    assert [c.created for c in out] == [True, False, True, False, True]
    assert [c.job.id for c in out] == [
        batch[0].id, old.job.id, batch[2].id, batch[2].id, batch[4].id,
    ]  # fmt: skip
    assert out[3].job == out[2].job
    assert out[2].job.status is Status.SCHEDULED
    assert await r.exists(keys.queue(Q).job(batch[3].id)) == 0
    assert await r.zcard(keys.queue(Q).all_index) == 4
    assert await idem_value(r, keys, "new") == f"{batch[2].id} {batch[2].fingerprint}"
    assert await idem_value(r, keys, "old") == f"{old.job.id} {batch[1].fingerprint}"
    assert await producer.enqueue([ispec("other", payload="x")]) == [out[4].job]
    await assert_invariants(r, keys, [Q])


async def test_the_same_key_with_two_requests_in_one_batch_is_a_conflict(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    batch = [ispec(None), ispec("dup", payload=1), ispec("dup", payload=2)]
    with pytest.raises(IdempotencyConflict) as exc:
        await producer.create(batch)
    assert (exc.value.key, exc.value.job_id) == ("dup", None)  # no job to name
    assert await snapshot(r, keys) == {}
    assert await r.exists(keys.queues) == 0  # not even the queue was registered
    await assert_invariants(r, keys, [Q])


async def test_a_key_shared_by_two_chunks_of_one_queue_makes_one_job(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    batch = [ispec(None, payload=i) for i in range(ENQUEUE_CHUNK + 5)]
    batch[1] = ispec("shared", payload="s")
    batch[ENQUEUE_CHUNK + 2] = ispec("shared", payload="s")
    out = await producer.create(batch)
    assert out[ENQUEUE_CHUNK + 2].job.id == batch[1].id
    assert [c.created for c in out].count(False) == 1
    assert await r.zcard(keys.queue(Q).all_index) == len(batch) - 1
    await assert_invariants(r, keys, [Q])


async def test_keys_are_per_queue(r: Redis, keys: Keys, producer: ProducerStore) -> None:
    a = await create_one(producer, ispec("k", "a", payload=1))
    b = await create_one(producer, ispec("k", "b", payload=2))
    assert (a.created, b.created) == (True, True)
    assert a.job.id != b.job.id
    await assert_invariants(r, keys, ["a", "b"])


@pytest.mark.parametrize("payload", [1, 2], ids=["same request", "other request"])
async def test_an_expired_key_is_free_again(
    r: Redis, keys: Keys, producer: ProducerStore, payload: int
) -> None:
    first = await create_one(producer, ispec("k", payload=1))
    await r.pexpire(keys.queue(Q).idempotency("k"), 1)
    await asyncio.sleep(0.01)
    spec = ispec("k", payload=payload)
    again = await create_one(producer, spec)
    assert again.created
    assert again.job.id == spec.id != first.job.id
    assert await idem_value(r, keys, "k") == f"{spec.id} {spec.fingerprint}"
    assert await r.zcard(keys.queue(Q).all_index) == 2
    await assert_invariants(r, keys, [Q])


@pytest.mark.parametrize("payload", [1, 2], ids=["same request", "other request"])
async def test_a_key_whose_job_is_gone_counts_as_unused(
    r: Redis, keys: Keys, producer: ProducerStore, payload: int
) -> None:
    """The key outlives its job only when the retention is shorter than the key's ttl; a
    repeat cannot return a job that is gone, so the key is taken over by a new job."""
    first = await create_one(producer, ispec("k", payload=1))
    await producer.cancel(first.job.id)
    await r.delete(keys.queue(Q).job(first.job.id))  # its retention ended
    spec = ispec("k", payload=payload)
    again = await create_one(producer, spec)
    assert again.created
    assert again.job.id == spec.id
    assert await idem_value(r, keys, "k") == f"{spec.id} {spec.fingerprint}"
    await assert_invariants(r, keys, [Q])


async def test_sending_the_same_call_again_reports_the_job_as_stored(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    """The same NewJob objects (a retry after a lost reply), with and without a key: the
    call's own jobs, re-read, still counted as created by this call."""
    specs = [ispec("k", payload=1), ispec(None, payload=2)]
    await producer.create(specs)
    await seed.claim_all(consumer, Q)
    before = await snapshot(r, keys)
    again = await producer.create(specs)
    assert [c.created for c in again] == [True, True]
    assert [c.job.id for c in again] == [s.id for s in specs]
    assert [c.job.status for c in again] == [Status.RUNNING, Status.RUNNING]
    assert all(c.job.worker == "c1" for c in again)
    assert await snapshot(r, keys) == before
    await assert_invariants(r, keys, [Q])


@pytest.mark.parametrize(("racer_payload", "want"), [(1, SAME), (2, OTHER)], ids=["same", "other"])
async def test_a_key_taken_between_the_first_read_and_the_script(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    monkeypatch: pytest.MonkeyPatch,
    racer_payload: int,
    want: str,
) -> None:
    """Another producer uses the key after this call read it: the script notices, and the
    call ends as a repeat of the other's job, or refuses with nothing of its own written."""
    racer = ProducerStore(r, keys, result_ttl_seconds=600)
    raced: list[Created] = []
    check = producer._refuse_known_conflicts

    async def race(*args: Any) -> None:
        await check(*args)
        if not raced:
            raced.append(await create_one(racer, ispec("k", payload=racer_payload)))

    monkeypatch.setattr(producer, "_refuse_known_conflicts", race)
    mine = [ispec(None, payload=0), ispec("k", payload=1)]
    if want == SAME:
        out = await producer.create(mine)
        assert [c.created for c in out] == [True, False]
        assert out[1].job.id == raced[0].job.id
        assert await r.zcard(keys.queue(Q).all_index) == 2
    else:
        with pytest.raises(IdempotencyConflict) as exc:
            await producer.create(mine)
        assert exc.value.job_id == raced[0].job.id
        assert await r.zcard(keys.queue(Q).all_index) == 1
        assert await r.exists(keys.queue(Q).job(mine[0].id)) == 0
    await assert_invariants(r, keys, [Q])


async def test_concurrent_identical_creates_make_exactly_one_job(
    r: Redis, keys: Keys, redis_server: RedisServer
) -> None:
    clients = [Redis(port=redis_server.port, socket_timeout=10) for _ in range(100)]
    try:
        stores = [ProducerStore(c, keys, result_ttl_seconds=600) for c in clients]
        results = await asyncio.gather(
            *(create_one(s, ispec("once", payload={"x": 1})) for s in stores)
        )
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    assert sum(c.created for c in results) == 1
    assert len({c.job.id for c in results}) == 1
    q = keys.queue(Q)
    assert await r.zcard(q.all_index) == 1
    assert await r.xlen(q.stream) == 1
    assert len([k async for k in r.scan_iter(match=f"{keys.prefix}:*:job:*")]) == 1
    await assert_invariants(r, keys, [Q])


@pytest.mark.parametrize("when", ["before the first read", "before the script"])
async def test_an_idempotency_key_of_the_wrong_type_fails_without_writes(
    r: Redis, keys: Keys, producer: ProducerStore, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    key = keys.queue(Q).idempotency("k")
    if when == "before the first read":
        await r.hset(key, "x", 1)
    else:
        check = producer._refuse_known_conflicts

        async def squat(*args: Any) -> None:
            await check(*args)
            await r.hset(key, "x", 1)

        monkeypatch.setattr(producer, "_refuse_known_conflicts", squat)
    specs = [ispec(None), ispec("k")]
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await producer.create(specs)
    assert await r.exists(*(keys.queue(Q).job(s.id) for s in specs)) == 0
    assert await r.exists(keys.queue(Q).stream) == 0
    await r.delete(keys.queue(Q).idempotency("k"))
    await assert_invariants(r, keys, [Q])
