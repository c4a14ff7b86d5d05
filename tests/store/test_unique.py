"""Unique jobs in enqueue.lua through ProducerStore.create: while the job holding a
`unique_key` is not finished (and `unique_for_ms` after it finished) a create with the key
answers that job, whatever it asks; a finished, purged or expired holder frees the key."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from conveyor.errors import IdempotencyConflict, ValidationError
from conveyor.states import Status
from conveyor.store import bulk
from conveyor.store.consumer import ConsumerStore
from conveyor.store.keys import Keys, unique_field
from conveyor.store.producer import ProducerStore
from conveyor.store.scheduling import SchedulerStore
from conveyor.values import Created, NewJob
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants
from tests.helpers.redis_server import RedisServer

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE


def uspec(key: str | None, payload: Any = None, **kw: Any) -> NewJob:
    return seed.spec(Q, seed.DEFAULT_TYPE, payload, unique_key=key, **kw)


async def create_one(producer: ProducerStore, spec: NewJob) -> Created:
    [created] = await producer.create([spec])
    return created


async def finish(consumer: ConsumerStore) -> None:
    job = await seed.claim_one(consumer)
    assert await seed.complete(consumer, job) == "completed"


async def test_a_held_key_answers_the_holder_whatever_the_request(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    first = await create_one(producer, uspec("report-7", {"a": 1}))
    again = await create_one(producer, uspec("report-7", {"b": 2}, max_attempts=3))
    assert first.created
    assert not again.created
    assert again.job.id == first.job.id
    assert again.job.payload == {"a": 1}
    assert await r.zcard(keys.queue(Q).all_index) == 1
    # The refused job left no id index entry behind.
    await assert_invariants(r, keys, [Q])


async def test_other_keys_and_other_queues_are_independent(producer: ProducerStore) -> None:
    a = await create_one(producer, uspec("a"))
    b = await create_one(producer, uspec("b"))
    c = await create_one(producer, seed.spec("other", unique_key="a"))
    assert a.created
    assert b.created
    assert c.created


async def test_a_finished_holder_frees_the_key(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    first = await create_one(producer, uspec("k"))
    await finish(consumer)
    second = await create_one(producer, uspec("k"))
    assert second.created
    assert second.job.id != first.job.id
    raw: Any = await r.hgetall(keys.queue(Q).unique)
    assert raw == {
        unique_field("k").encode(): f"{second.job.id} 0".encode(),
        f"j:{second.job.id}".encode(): b"k",
    }
    await assert_invariants(r, keys, [Q])


async def test_a_running_holder_still_holds(
    producer: ProducerStore, consumer: ConsumerStore
) -> None:
    first = await create_one(producer, uspec("k"))
    await seed.claim_one(consumer)
    again = await create_one(producer, uspec("k"))
    assert not again.created
    assert again.job.id == first.job.id
    assert again.job.status is Status.RUNNING


async def test_unique_for_keeps_the_key_after_the_job_finished(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    first = await create_one(producer, uspec("k", unique_for_seconds=3600))
    await finish(consumer)
    again = await create_one(producer, uspec("k"))
    assert not again.created
    assert again.job.id == first.job.id
    assert again.job.status is Status.COMPLETED
    # An hour later (its finished_at moved back), the key is free.
    await r.hset(keys.queue(Q).job(first.job.id), "finished_at", 1)
    later = await create_one(producer, uspec("k"))
    assert later.created
    assert later.job.id != first.job.id


async def test_a_purged_or_expired_holder_frees_the_key_and_its_fields(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    consumer: ConsumerStore,
    scheduler: SchedulerStore,
) -> None:
    await create_one(producer, uspec("k", unique_for_seconds=3600))
    await finish(consumer)
    assert (await bulk.purge(r, keys, Q, Status.COMPLETED, 10)).done == 1
    assert not await r.exists(keys.queue(Q).unique)
    second = await create_one(producer, uspec("k", unique_for_seconds=3600))
    assert second.created
    await finish(consumer)
    # Retention over: the hash is gone, expire drops the fields.
    q = keys.queue(Q)
    await r.delete(q.job(second.job.id))
    await r.zadd(q.expiries, {second.job.id: 1})
    assert await scheduler.expire(Q, 100) == 1
    assert not await r.exists(q.unique)


async def test_one_batch_with_the_same_key_twice_makes_one_job(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    out = await producer.create([uspec("k", 1), uspec("k", 2), uspec(None, 3)])
    assert [c.created for c in out] == [True, False, True]
    assert out[1].job.id == out[0].job.id
    assert await r.zcard(keys.queue(Q).all_index) == 2
    await assert_invariants(r, keys, [Q])


async def test_a_resend_of_the_same_call_answers_the_job_as_created(
    producer: ProducerStore,
) -> None:
    spec = uspec("k")
    first = await create_one(producer, spec)
    again = await create_one(producer, spec)
    assert first.created
    assert again.created
    assert again.job.id == first.job.id


async def test_with_an_idempotency_key_the_key_names_the_job_answered(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    holder = await create_one(producer, uspec("k", {"a": 1}))
    answered = await create_one(producer, uspec("k", {"b": 2}, idempotency_key="i1"))
    assert not answered.created
    assert answered.job.id == holder.job.id
    await finish(consumer)
    # The same request again: the idempotency key still answers the same job.
    repeat = await create_one(producer, uspec("k", {"b": 2}, idempotency_key="i1"))
    assert not repeat.created
    assert repeat.job.id == holder.job.id
    # Another request under that idempotency key conflicts, as always.
    with pytest.raises(IdempotencyConflict):
        await create_one(producer, uspec("k", {"c": 3}, idempotency_key="i1"))
    assert await r.zcard(keys.queue(Q).all_index) == 1


async def test_a_key_taken_between_the_read_and_the_script_is_read_again(
    producer: ProducerStore, monkeypatch: pytest.MonkeyPatch, other_client: Redis, keys: Keys
) -> None:
    other = seed.producer_store(other_client, keys)
    read = producer._read_unique_keys
    raced: list[Created] = []

    async def race(chunks: Any) -> Any:
        found = await read(chunks)
        if not raced:
            raced.append(await create_one(other, uspec("k", "theirs")))
        return found

    monkeypatch.setattr(producer, "_read_unique_keys", race)
    mine = await create_one(producer, uspec("k", "mine"))
    assert not mine.created
    assert mine.job.id == raced[0].job.id


async def test_concurrent_unique_creates_make_exactly_one_job(
    r: Redis, keys: Keys, redis_server: RedisServer
) -> None:
    clients = [Redis(port=redis_server.port, socket_timeout=10) for _ in range(100)]
    try:
        stores = [ProducerStore(c, keys, result_ttl_seconds=600) for c in clients]
        results = await asyncio.gather(
            *(create_one(s, uspec("once", {"n": i})) for i, s in enumerate(stores))
        )
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    assert sum(c.created for c in results) == 1
    assert len({c.job.id for c in results}) == 1
    q = keys.queue(Q)
    assert await r.zcard(q.all_index) == 1
    assert await r.xlen(q.stream) == 1
    await assert_invariants(r, keys, [Q])


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"unique_key": "has space"}, "unique_key"),
        ({"unique_key": "k", "unique_for_seconds": -1}, "unique_for_seconds"),
        ({"unique_key": "k", "unique_for_seconds": "10"}, "unique_for_seconds"),
        ({"unique_for_seconds": 10}, "unique_for_seconds"),
    ],
)
def test_bad_unique_options_name_their_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        seed.spec(Q, **options)
    assert caught.value.field == field
