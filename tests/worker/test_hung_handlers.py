"""Handlers that ignore being stopped: an async one swallowing its cancellation, a sync one
never looking at `ctx.cancelled`. Python can stop neither; the worker must still record
an honest outcome, keep its slots and threads, and never hand back a job whose code
still runs (the fault suite's T7 and T2 scenarios show the same end to end)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from conveyor.job import Outcome
from conveyor.states import Status
from conveyor.store.producer import ProducerStore
from conveyor.worker import hung_handlers
from conveyor.worker.context import JobContext
from conveyor.worker.registry import Registry
from conveyor.worker.runtime import Worker
from tests.worker.support import enqueue, running, wait_status, worker_settings

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def quick_reaper(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hung_handlers, "ABANDON_AFTER_SECONDS", 0.2)
    monkeypatch.setattr(hung_handlers, "REAP_EVERY_SECONDS", 0.05)


async def test_an_async_handler_ignoring_its_timeout_is_failed_and_left_running(
    redis_url: str, prefix: str, producer: ProducerStore
) -> None:
    registry = Registry()
    release = asyncio.Event()
    ignored: list[int] = []

    @registry.handler("stubborn")
    async def stubborn(ctx: JobContext, payload: Any) -> str:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                ignored.append(ctx.attempt)  # swallowed: keeps running
        return "late"

    @registry.handler("quick")
    async def quick(ctx: JobContext, payload: Any) -> str:
        return "ok"

    job_id = await enqueue(producer, "stubborn", timeout_seconds=0.2, max_attempts=1)
    w = Worker(worker_settings(redis_url, prefix, concurrency=1), registry)
    async with running(w):
        job = await wait_status(producer, job_id, Status.FAILED, timeout=10)
        assert w.in_flight == 0  # its slot is free again...
        other = await enqueue(producer, "quick")
        await wait_status(producer, other, Status.COMPLETED)  # ...and used
        assert len(w.abandoned) == 1
        release.set()  # the handler ends at last: its result is dropped
        await asyncio.wait_for(asyncio.gather(*w.abandoned, return_exceptions=True), 5)
    assert ignored == [1]
    assert job.last_error == "timed out after 0.2s; the handler ignored the cancellation"
    assert job.history[-1].outcome == Outcome.TIMED_OUT
    assert (await producer.get(job_id)).status is Status.FAILED  # the late result changed nothing


async def test_a_sync_handler_still_running_at_shutdown_is_not_handed_back(
    redis_url: str, prefix: str, producer: ProducerStore
) -> None:
    """It ignores the stop but finishes during the shutdown wait: its outcome is recorded
    as it happened, and the job never ran a second time."""
    registry = Registry()
    started = threading.Event()
    runs: list[int] = []

    @registry.handler("deaf")
    def deaf(ctx: JobContext, payload: Any) -> str:
        runs.append(ctx.attempt)
        started.set()
        time.sleep(0.8)  # never looks at ctx.cancelled
        return "finished"

    job_id = await enqueue(producer, "deaf")
    w = Worker(worker_settings(redis_url, prefix, shutdown_timeout_seconds=0.1), registry)
    async with running(w) as task:
        await asyncio.to_thread(started.wait, 10)
        w.request_stop()
        await asyncio.wait_for(task, 10)
    job = await producer.get(job_id)
    assert (job.status, job.result, runs) == (Status.COMPLETED, "finished", [1])
    assert Outcome.RETURNED not in [a.outcome for a in job.history]


async def test_a_thread_lost_to_a_timed_out_handler_is_replaced(
    redis_url: str, prefix: str, producer: ProducerStore
) -> None:
    registry = Registry()
    stuck = threading.Event()

    @registry.handler("stuck")
    def stuck_handler(ctx: JobContext, payload: Any) -> None:
        stuck.wait(5)  # ignores ctx.cancelled; the test lets it go at the end

    @registry.handler("quick")
    def quick(ctx: JobContext, payload: Any) -> str:
        return "ok"

    hung = await enqueue(producer, "stuck", timeout_seconds=0.2, max_attempts=1)
    w = Worker(worker_settings(redis_url, prefix, concurrency=1), registry)
    try:
        async with running(w):
            await wait_status(producer, hung, Status.FAILED)
            after = await enqueue(producer, "quick", timeout_seconds=2)
            job = await wait_status(producer, after, Status.COMPLETED, Status.FAILED)
    finally:
        stuck.set()
    assert (job.status, job.result) == (Status.COMPLETED, "ok")
    assert w.executor.hung_threads == 1
