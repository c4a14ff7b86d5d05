"""`unique_key` through the Python client: 100 concurrent enqueues with one key, each on
its own connection, make one job; the job finished, the key is free again."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from conveyor.client import Client
from conveyor.store.consumer import ConsumerStore
from conveyor.store.keys import Keys
from tests.helpers import seed

pytestmark = pytest.mark.anyio
PARALLEL = 100


async def test_concurrent_unique_enqueues_make_one_job(redis_url: str, prefix: str) -> None:
    clients = [Client.from_url(redis_url, key_prefix=prefix) for _ in range(PARALLEL)]
    try:
        jobs = await asyncio.gather(
            *(
                c.enqueue("echo", i, queue="reports", unique_key="nightly")
                for i, c in enumerate(clients)
            )
        )
        assert len({job.id for job in jobs}) == 1
        page = await clients[0].list(queue="reports")
        assert [job.id for job in page.items] == [jobs[0].id]
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def test_a_finished_job_frees_the_key(
    redis_url: str, prefix: str, r: Redis, keys: Keys
) -> None:
    consumer = ConsumerStore(r, keys, "c1", max_deliveries=5, result_ttl_seconds=600)
    async with Client.from_url(redis_url, key_prefix=prefix) as client:
        first = await client.enqueue("echo", queue="reports", unique_key="k")
        assert (await client.enqueue("echo", queue="reports", unique_key="k")).id == first.id
        claimed = await seed.claim_one(consumer, "reports")
        await seed.complete(consumer, claimed)
        second = await client.enqueue("echo", queue="reports", unique_key="k")
        assert second.id != first.id
