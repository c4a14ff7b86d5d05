"""The one-job create over the multiplexed connection (ProducerStore._create_single): the
same writes as the general path, and every answer other than "created now" handed to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from conveyor.redis_multiplex import MultiplexedRedis, connect_multiplexed_url
from conveyor.states import Status
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants
from tests.helpers.redis_server import RedisServer

Q = seed.DEFAULT_QUEUE
pytestmark = pytest.mark.anyio


@pytest.fixture
async def hot(redis_server: RedisServer) -> AsyncIterator[MultiplexedRedis]:
    client = connect_multiplexed_url(redis_server.url, timeout_seconds=5.0)
    assert client is not None
    yield client
    await client.aclose()


@pytest.fixture
def fast(r: Redis, keys: Keys, hot: MultiplexedRedis) -> ProducerStore:
    return ProducerStore(r, keys, result_ttl_seconds=600, hot_redis=hot)


def _count_writes(hot: MultiplexedRedis, sent: list[list[Any]]) -> None:
    real = hot.execute_many

    async def counting(commands: Any) -> list[Any]:
        sent.append([c[0] for c in commands])
        return await real(commands)

    hot.execute_many = counting  # type: ignore[method-assign]


async def test_one_job_is_one_write_and_stored_as_the_general_path_stores_it(
    r: Redis, keys: Keys, fast: ProducerStore, producer: ProducerStore, hot: MultiplexedRedis
) -> None:
    await seed.enqueue(fast)  # loads the script
    sent: list[list[Any]] = []
    _count_writes(hot, sent)
    one, other = seed.spec(Q, payload={"n": 1}), seed.spec(Q, payload={"n": 1})
    [created] = await fast.enqueue([one])
    await producer.enqueue([other])
    assert sent == [["HSET", "EVALSHA"]]
    assert created.status is Status.PENDING
    assert created.payload == {"n": 1}
    mine = await seed.job_hash(r, keys, Q, one.id)
    theirs = await seed.job_hash(r, keys, Q, other.id)
    volatile = {"id", "entry", "created_at", "updated_at"}
    assert {k: v for k, v in mine.items() if k not in volatile} == {
        k: v for k, v in theirs.items() if k not in volatile
    }
    assert await fast.get(one.id) == created
    await assert_invariants(r, keys, [Q])


async def test_after_a_script_flush_the_general_path_loads_it_and_creates_once(
    r: Redis, keys: Keys, fast: ProducerStore
) -> None:
    await seed.enqueue(fast)
    await r.script_flush()
    job = await seed.enqueue(fast)
    assert job.status is Status.PENDING
    assert await r.xlen(keys.queue(Q).stream) == 2
    await assert_invariants(r, keys, [Q])


async def test_a_resent_id_is_read_back_not_created_twice(
    r: Redis, keys: Keys, fast: ProducerStore, consumer
) -> None:
    spec = seed.spec(Q, payload=7)
    await fast.enqueue([spec])
    await seed.claim_one(consumer, Q)
    [again] = await fast.enqueue([spec])  # a retry after a lost reply
    assert again.id == spec.id
    assert again.status is Status.RUNNING
    assert await r.xlen(keys.queue(Q).stream) == 1
    await assert_invariants(r, keys, [Q])


async def test_a_retired_registration_is_registered_again(
    r: Redis, keys: Keys, fast: ProducerStore
) -> None:
    await seed.enqueue(fast)
    gen = (await fast.registry.register([Q]))[Q]
    await r.set(keys.queue(Q).retired, gen)  # the queue was found empty and retired
    job = await seed.enqueue(fast)
    assert job.status is Status.PENDING
    assert await r.sismember(keys.queues, Q)
    await assert_invariants(r, keys, [Q])


async def test_a_wrong_typed_stream_fails_with_nothing_left_behind(
    r: Redis, keys: Keys, fast: ProducerStore
) -> None:
    await r.set(keys.queue(Q).stream, "squatter")
    spec = seed.spec(Q)
    with pytest.raises(Exception, match="WRONGTYPE"):
        await fast.enqueue([spec])
    assert not await r.exists(keys.queue(Q).job(spec.id))
    assert not await r.hexists(keys.id_index(spec.id), spec.id)


async def test_an_immediate_create_does_not_need_the_delayed_keys(
    r: Redis, keys: Keys, fast: ProducerStore
) -> None:
    """A create of jobs due now touches neither the delayed set nor the scheduled index,
    so only a delayed create is refused by a wrong-typed one."""
    q = keys.queue(Q)
    await r.set(q.delayed, "wrong")
    job = await seed.enqueue(fast)
    assert job.status is Status.PENDING
    with pytest.raises(Exception, match="WRONGTYPE"):
        await seed.enqueue(fast, delay_seconds=30)
    await r.delete(q.delayed)
    await assert_invariants(r, keys, [Q])
