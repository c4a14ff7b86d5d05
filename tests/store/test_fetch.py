"""`ConsumerStore.fetch` (read_claim.lua): new entries read and claimed in one script, and
the wait of an idle worker pipelined ahead of the next fetch."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from conveyor.redis_multiplex import MultiplexedRedis
from conveyor.states import Status
from conveyor.store.consumer import ClaimResult, ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from tests.helpers import seed
from tests.helpers.redis_server import RedisServer

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE


async def test_fetch_claims_what_it_reads_up_to_count(
    producer: ProducerStore, consumer: ConsumerStore, r: Redis, keys: Keys
) -> None:
    jobs = [await seed.enqueue(producer, Q, payload=i) for i in range(3)]
    await consumer.ensure_groups([Q])
    claimed, delivered = await consumer.fetch([Q], count=2, block_ms=0)
    assert [j.job_id for j in claimed.run] == [j.id for j in jobs[:2]]
    assert [d.job_id for d in delivered] == [j.id for j in jobs[:2]]
    for job in claimed.run:
        stored = await r.hmget(keys.queue(Q).job(job.job_id), "status", "token")
        assert stored == [b"running", job.token.encode()]
    rest, _ = await consumer.fetch([Q], count=5, block_ms=0)
    assert [j.job_id for j in rest.run] == [jobs[2].id]
    assert await consumer.fetch([Q], count=5, block_ms=0) == (ClaimResult(), [])


async def test_queues_are_read_in_priority_order_within_one_count(
    producer: ProducerStore, consumer: ConsumerStore
) -> None:
    low = [await seed.enqueue(producer, "low") for _ in range(2)]
    high = [await seed.enqueue(producer, "high") for _ in range(2)]
    await consumer.ensure_groups(["high", "low"])
    claimed, _ = await consumer.fetch(["high", "low"], count=3, block_ms=0)
    assert [(j.queue, j.job_id) for j in claimed.run] == [
        ("high", high[0].id),
        ("high", high[1].id),
        ("low", low[0].id),
    ]


async def test_an_entry_whose_job_is_gone_is_dropped_not_started(
    producer: ProducerStore, consumer: ConsumerStore, r: Redis, keys: Keys
) -> None:
    job = await seed.enqueue(producer, Q)
    await r.delete(keys.queue(Q).job(job.id))
    await consumer.ensure_groups([Q])
    claimed, delivered = await consumer.fetch([Q], count=5, block_ms=0)
    assert claimed.run == []
    assert claimed.skipped == [(job.id, "missing")]
    assert len(delivered) == 1
    assert await r.xlen(keys.queue(Q).stream) == 0  # acknowledged and deleted


@pytest.mark.parametrize("client", ["multiplexed", "redis-py"])
async def test_an_idle_fetch_waits_and_wakes_with_the_job_claimed(
    client: str, producer: ProducerStore, r: Redis, keys: Keys, redis_server: RedisServer
) -> None:
    blocking: Redis | MultiplexedRedis = (
        MultiplexedRedis(redis_server.url, timeout=5, blocking_read_seconds=5)
        if client == "multiplexed"
        else r
    )
    consumer = ConsumerStore(
        r, keys, "c1", max_deliveries=5, result_ttl_seconds=600, blocking_redis=blocking
    )
    await consumer.ensure_groups([Q])
    await seed.enqueue(producer, Q)  # delivered to another consumer first: never woken by it
    await seed.consumer_store(r, keys, "other").fetch([Q], count=5, block_ms=0)
    assert await consumer.fetch([Q], count=5, block_ms=0) == (ClaimResult(), [])

    async def later() -> str:
        await asyncio.sleep(0.2)
        return (await seed.enqueue(producer, Q)).id

    started = time.monotonic()
    enqueued = asyncio.ensure_future(later())
    claimed, _ = await consumer.fetch([Q], count=5, block_ms=4000)
    waited = time.monotonic() - started
    assert [j.job_id for j in claimed.run] == [await enqueued]
    assert 0.15 < waited < 3.5  # woken by the new entry, not by the older one or the timeout
    status = await r.hget(keys.queue(Q).job(claimed.run[0].job_id), "status")
    assert status == Status.RUNNING.value.encode()
    if isinstance(blocking, MultiplexedRedis):
        await blocking.aclose()


async def test_an_idle_fetch_returns_empty_after_its_block_time(
    consumer: ConsumerStore,
) -> None:
    await consumer.ensure_groups([Q])
    assert (await consumer.fetch([Q], count=5, block_ms=0))[1] == []
    started = time.monotonic()
    assert (await consumer.fetch([Q], count=5, block_ms=200))[1] == []
    assert time.monotonic() - started >= 0.15
