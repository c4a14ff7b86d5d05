"""Helpers of the worker tests: short-timed settings, a worker or scheduler running
in-process, job creation and polling of job states."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis

from conveyor.config import Settings
from conveyor.job import Job
from conveyor.jobspec import build
from conveyor.states import Status
from conveyor.store.keys import GROUP, Keys
from conveyor.store.producer import ProducerStore
from conveyor.worker.runtime import Worker
from conveyor.worker.scheduler import Scheduler
from tests.helpers.wait import eventually_async


def worker_settings(redis_url: str, prefix: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "key_prefix": prefix,
        "lease_seconds": 1.0,
        "heartbeat_seconds": 0.2,
        "shutdown_timeout_seconds": 0.2,
        "concurrency": 4,
        "max_attempts": 3,
        "retry_base_seconds": 0.01,
        "retry_max_seconds": 0.05,
        "redis_timeout_seconds": 2.0,
        "result_ttl_seconds": 600,
    }
    values.update(overrides)
    return Settings(**values)


def own_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if not t.done()}


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[asyncio.Task[None]]:
    """`worker.run()` as a task; stopped at the end (without a grace period) unless the test
    stopped it already. Checks that the run left no asyncio task behind."""
    before = own_tasks()
    task = asyncio.create_task(worker.run(), name="worker-under-test")
    try:
        yield task
    except BaseException:
        worker.request_stop()
        worker.request_stop()
        await asyncio.wait([task], timeout=15)
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: the test's own failure is the one to report
        raise
    if not task.done():
        worker.request_stop()
        worker.request_stop()
    await asyncio.wait_for(task, 15)
    leftover = own_tasks() - before
    assert leftover == set(), f"tasks left behind by worker.run(): {leftover}"


@asynccontextmanager
async def scheduling(
    redis: Redis, keys: Keys, result_ttl_seconds: int = 600
) -> AsyncIterator[Scheduler]:
    """`scheduler.run()` as a task for the duration of the block."""
    scheduler = Scheduler(redis, keys, result_ttl_seconds=result_ttl_seconds)
    task = asyncio.create_task(scheduler.run(), name="scheduler-under-test")
    try:
        yield scheduler
    finally:
        scheduler.request_stop()
        await asyncio.wait_for(task, 10)


async def enqueue(producer: ProducerStore, job_type: str, payload: Any = None, **kw: Any) -> str:
    [job] = await producer.enqueue([build(job_type, payload, **kw)])
    return job.id


async def enqueue_many(producer: ProducerStore, job_type: str, payloads: list[Any]) -> list[str]:
    jobs = await producer.enqueue([build(job_type, p) for p in payloads])
    return [j.id for j in jobs]


async def wait_status(
    producer: ProducerStore,
    job_id: str,
    *statuses: Status,
    timeout: float = 10.0,  # noqa: ASYNC109 - a polling deadline
) -> Job:
    async def check() -> Job | None:
        job = await producer.get(job_id)
        return job if job.status in statuses else None

    return await eventually_async(
        check, timeout=timeout, interval=0.01, what=f"job {job_id} in {statuses}"
    )


async def wait_all(
    producer: ProducerStore,
    job_ids: list[str],
    status: Status,
    timeout: float = 15.0,  # noqa: ASYNC109 - a polling deadline
) -> list[Job]:
    async def check() -> list[Job] | None:
        jobs = [await producer.get(i) for i in job_ids]
        return jobs if all(j.status is status for j in jobs) else None

    return await eventually_async(check, timeout=timeout, what=f"all jobs {status}")


async def pending_entries(r: Redis, keys: Keys, consumer: str | None = None) -> list[Any]:
    """The PEL of the default queue's group (of one consumer when given)."""
    stream = keys.queue("default").stream
    if consumer is None:
        reply: Any = await r.xpending_range(stream, GROUP, min="-", max="+", count=100)
    else:
        reply = await r.xpending_range(
            stream, GROUP, min="-", max="+", count=100, consumername=consumer
        )
    return list(reply)


async def subscribers(r: Redis, channel: str) -> int:
    reply: Any = await r.pubsub_numsub(channel)
    return int(reply[0][1])


async def redis_ms(r: Redis) -> int:
    seconds, micros = await r.time()
    return int(seconds) * 1000 + int(micros) // 1000
