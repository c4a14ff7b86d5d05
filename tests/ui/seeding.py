"""Putting jobs into a state straight through the store, from synchronous browser tests.

The store is async; Playwright's synchronous API owns the test thread's event loop, so the
store calls run in a thread of their own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from redis.asyncio import Redis

from conveyor.store.consumer import Failure
from conveyor.store.keys import Keys
from conveyor.store.workers import WorkerRegistry
from tests.helpers import seed

T = TypeVar("T")


def run(redis_url: str, work: Callable[[Redis], Awaitable[T]]) -> T:
    async def main() -> T:
        client = Redis.from_url(redis_url, socket_timeout=10, socket_connect_timeout=5)
        try:
            return await work(client)
        finally:
            await client.aclose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result(timeout=60)


def failed_jobs(redis_url: str, prefix: str, queue: str, n: int, error: str) -> list[str]:
    """`n` jobs of `queue` that failed for good with `error`; their ids, oldest first."""

    async def work(r: Redis) -> list[str]:
        keys = Keys(prefix)
        producer = seed.producer_store(r, keys)
        consumer = seed.consumer_store(r, keys, "seeder")
        jobs = await seed.enqueue_many(producer, n, queue)
        claimed = await seed.claim_all(consumer, queue, count=n)
        failures = [Failure(c, error, "failed", False, 0, None) for c in claimed]
        await consumer.finish(failures=failures, schedule_channel="")
        return [j.id for j in jobs]

    return run(redis_url, work)


def late_worker(redis_url: str, prefix: str, worker_id: str, seconds_late: float) -> None:
    """A heartbeat of a worker that last reported `seconds_late` ago (kept for a minute)."""

    async def work(r: Redis) -> None:
        keys = Keys(prefix)
        info: dict[str, str | int | float] = {"host": "old-box", "pid": 1, "queues": "default"}
        await WorkerRegistry(r, keys).beat(worker_id, info, 20)
        now = await seed.redis_now_ms(r)
        await r.hset(keys.worker(worker_id), "last_seen", now - int(seconds_late * 1000))

    run(redis_url, work)
