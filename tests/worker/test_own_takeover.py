"""Regression: a worker's own reclaimer taking over an entry of a job the worker is still
running (its renewals were late by more than the lease, e.g. Redis paused) must not start
a second attempt of that job; the takeover only reset the entry's idle time. Goes with
tests/store/test_self_reclaim.py: claims of reclaimed entries now count a lost attempt."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from conveyor.states import Status
from conveyor.store.producer import ProducerStore
from conveyor.worker.context import JobContext
from conveyor.worker.registry import Registry
from conveyor.worker.runtime import Worker
from tests.worker.support import enqueue, running, wait_status, worker_settings

pytestmark = pytest.mark.anyio


async def test_taking_over_its_own_running_attempt_does_not_run_it_twice(
    redis_url: str, prefix: str, r: Redis, producer: ProducerStore
) -> None:
    registry = Registry()
    started, release = asyncio.Event(), asyncio.Event()
    runs: list[int] = []

    @registry.handler("work")
    async def work(ctx: JobContext, payload: Any) -> int:
        runs.append(ctx.attempt)
        started.set()
        await release.wait()
        return ctx.attempt

    job_id = await enqueue(producer, "work", {})
    worker = Worker(worker_settings(redis_url, prefix, lease_seconds=5), registry)
    async with running(worker):
        await asyncio.wait_for(started.wait(), 10)
        before = await producer.get(job_id)
        deliveries = await worker.store.autoclaim("default", 0, 10)
        assert [(d.job_id, d.reclaimed) for d in deliveries] == [(job_id, True)]
        await worker._start(deliveries)
        assert await producer.get(job_id) == before  # no new attempt, no lost attempt
        release.set()
        job = await wait_status(producer, job_id, Status.COMPLETED)
    assert runs == [1]
    assert (job.attempts, job.result) == (1, 1)
