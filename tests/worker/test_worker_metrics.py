"""Worker metrics, counted in-process against a real Redis: every outcome moves exactly
its counter, and the histograms see every attempt."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from conveyor.metrics import WorkerMetrics
from conveyor.states import Status
from conveyor.store.consumer import ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.worker.context import JobContext
from conveyor.worker.errors import PermanentError
from conveyor.worker.registry import Registry
from conveyor.worker.runtime import Worker
from tests.helpers.wait import eventually_async
from tests.metrics.support import scrape, value
from tests.worker.support import enqueue, running, scheduling, wait_status, worker_settings

pytestmark = pytest.mark.anyio


async def until(check: Any, timeout: float = 10.0, what: str = "condition") -> Any:  # noqa: ASYNC109
    async def poll() -> Any:
        return check()

    return await eventually_async(poll, timeout=timeout, interval=0.01, what=what)


def job_value(metrics: WorkerMetrics, name: str, job_type: str, queue: str = "default") -> float:
    return value(scrape(metrics.registry), name, queue=queue, type=job_type)


async def test_outcomes_move_exactly_their_counters(
    redis_url: str, prefix: str, r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    registry = Registry()
    started = asyncio.Event()

    @registry.handler("ok")
    async def ok(ctx: JobContext, payload: Any) -> str:
        return "done"

    @registry.handler("flaky")
    def flaky(ctx: JobContext, payload: Any) -> int:
        if ctx.attempt == 1:
            raise RuntimeError("first attempt fails")
        return ctx.attempt

    @registry.handler("bad")
    async def bad(ctx: JobContext, payload: Any) -> None:
        raise PermanentError("never")

    @registry.handler("long")
    async def long(ctx: JobContext, payload: Any) -> None:
        started.set()
        await asyncio.sleep(30)

    metrics = WorkerMetrics(CollectorRegistry())
    worker = Worker(worker_settings(redis_url, prefix, concurrency=3), registry, metrics=metrics)
    ids = {t: await enqueue(producer, t) for t in ("ok", "flaky", "bad", "nope")}
    long_id = await enqueue(producer, "long")
    async with scheduling(r, keys), running(worker):
        await wait_status(producer, ids["ok"], Status.COMPLETED)
        await wait_status(producer, ids["flaky"], Status.COMPLETED)
        await wait_status(producer, ids["bad"], Status.FAILED)
        await wait_status(producer, ids["nope"], Status.FAILED)
        await asyncio.wait_for(started.wait(), 10)
        text = scrape(metrics.registry)
        assert value(text, "conveyor_jobs_in_flight") == 1
        assert value(text, "conveyor_worker_concurrency") == 3
        await producer.cancel(long_id)
        await wait_status(producer, long_id, Status.CANCELED)
        await until(lambda: not worker.attempts, what="every attempt accounted")
    text = scrape(metrics.registry)

    def count(name: str, job_type: str) -> float:
        return value(text, name, queue="default", type=job_type)

    expected = {
        "conveyor_jobs_completed_total": {"ok": 1, "flaky": 1},
        "conveyor_jobs_retried_total": {"flaky": 1},
        "conveyor_jobs_failed_total": {"bad": 1, "nope": 1},  # an unknown type fails
        "conveyor_jobs_canceled_total": {"long": 1},
    }
    for name, per_type in expected.items():
        for job_type in ("ok", "flaky", "bad", "nope", "long"):
            assert count(name, job_type) == per_type.get(job_type, 0), (name, job_type)
    for job_type, attempts in {"ok": 1, "flaky": 2, "bad": 1, "nope": 1, "long": 1}.items():
        assert count("conveyor_job_duration_seconds_count", job_type) == attempts, job_type
        assert count("conveyor_job_wait_seconds_count", job_type) == attempts, job_type
    assert count("conveyor_job_duration_seconds_sum", "flaky") >= 0
    assert 0 <= count("conveyor_job_wait_seconds_sum", "ok") < 10
    for reason in ("reclaimed", "returned", "poison"):
        assert value(text, "conveyor_jobs_recovered_total", reason=reason) == 0
    assert value(text, "conveyor_stale_completions_total") == 0
    assert value(text, "conveyor_jobs_in_flight") == 0


async def test_a_job_handed_back_at_shutdown_counts_as_returned(
    redis_url: str, prefix: str, producer: ProducerStore
) -> None:
    registry = Registry()
    started = asyncio.Event()

    @registry.handler("long")
    async def long(ctx: JobContext, payload: Any) -> None:
        started.set()
        await asyncio.sleep(30)

    job_id = await enqueue(producer, "long")
    metrics = WorkerMetrics(CollectorRegistry())
    worker = Worker(worker_settings(redis_url, prefix), registry, metrics=metrics)
    async with running(worker) as task:
        await asyncio.wait_for(started.wait(), 10)
        worker.request_stop()
        await asyncio.wait_for(task, 10)
    assert (await producer.get(job_id)).status is Status.PENDING
    text = scrape(metrics.registry)
    assert value(text, "conveyor_jobs_recovered_total", reason="returned") == 1
    assert value(text, "conveyor_jobs_canceled_total", queue="default", type="long") == 0
    assert value(text, "conveyor_jobs_failed_total", queue="default", type="long") == 0
    assert value(text, "conveyor_job_duration_seconds_count", queue="default", type="long") == 0


async def seed_dead_claim(r: Redis, keys: Keys, max_deliveries: int = 5) -> None:
    """Start an attempt as a consumer that then dies: it never finishes or renews it."""
    dead = ConsumerStore(r, keys, "dead-1", max_deliveries=max_deliveries, result_ttl_seconds=600)
    await dead.ensure_groups(["default"])
    claim = await dead.claim(await dead.read(["default"], count=10, block_ms=100))
    assert len(claim.run) == 1


async def test_a_reclaimed_job_that_runs_counts_as_reclaimed(
    redis_url: str, prefix: str, r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    registry = Registry()

    @registry.handler("work")
    async def work(ctx: JobContext, payload: Any) -> int:
        return ctx.attempt

    job_id = await enqueue(producer, "work")
    await seed_dead_claim(r, keys)
    metrics = WorkerMetrics(CollectorRegistry())
    worker = Worker(worker_settings(redis_url, prefix, lease_seconds=1), registry, metrics=metrics)
    async with running(worker):
        await wait_status(producer, job_id, Status.COMPLETED)
        await until(lambda: worker.outcomes.processed == 1, what="completion accounted")
    text = scrape(metrics.registry)
    assert value(text, "conveyor_jobs_recovered_total", reason="reclaimed") == 1
    assert value(text, "conveyor_jobs_completed_total", queue="default", type="work") == 1
    assert worker.reclaimer.entries == set()


async def test_a_poison_job_counts_as_poison_and_failed(
    redis_url: str, prefix: str, r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    registry = Registry()

    @registry.handler("poison")
    async def poison(ctx: JobContext, payload: Any) -> None:
        raise AssertionError("a poison job never runs again")

    job_id = await enqueue(producer, "poison")
    await seed_dead_claim(r, keys, max_deliveries=1)
    settings = worker_settings(redis_url, prefix, lease_seconds=1, max_deliveries=1)
    metrics = WorkerMetrics(CollectorRegistry())
    worker = Worker(settings, registry, metrics=metrics)
    async with running(worker):
        await wait_status(producer, job_id, Status.FAILED)
        await until(lambda: worker.outcomes.failed == 1, what="failure counted")
        await until(
            lambda: value(
                scrape(metrics.registry), "conveyor_jobs_recovered_total", reason="poison"
            ),
            what="poison counted",
        )
    text = scrape(metrics.registry)
    assert value(text, "conveyor_jobs_recovered_total", reason="poison") == 1
    assert value(text, "conveyor_jobs_recovered_total", reason="reclaimed") == 0
    assert value(text, "conveyor_jobs_failed_total", queue="default", type="poison") == 1
    assert value(text, "conveyor_job_duration_seconds_count", queue="default", type="poison") == 0


async def test_account_maps_every_finisher_status(redis_url: str, prefix: str) -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    worker = Worker(worker_settings(redis_url, prefix), Registry(), metrics=metrics)
    try:
        series = metrics.job("q", "t")
        for status in ("completed", "retrying", "failed", "canceled", "pending", "stale"):
            worker.outcomes.account(status, 0.5, None, series)
        worker.outcomes.account("unrecorded", 0.5, None, series)
        text = scrape(metrics.registry)
        for name in ("completed", "retried", "failed", "canceled"):
            assert value(text, f"conveyor_jobs_{name}_total", queue="q", type="t") == 1, name
        assert value(text, "conveyor_job_duration_seconds_count", queue="q", type="t") == 4
        assert value(text, "conveyor_job_duration_seconds_sum", queue="q", type="t") == 2.0
        assert value(text, "conveyor_jobs_recovered_total", reason="returned") == 1
        assert value(text, "conveyor_stale_completions_total") == 1
        # The heartbeat's totals: completed is processed; retrying and failed are failures.
        assert (worker.outcomes.processed, worker.outcomes.failed) == (1, 2)
    finally:
        worker.executor.close()
        await worker.blocking_redis.aclose()
        await worker.redis.aclose()


async def test_wait_is_measured_from_ready_to_start(
    redis_url: str, prefix: str, producer: ProducerStore
) -> None:
    registry = Registry()

    @registry.handler("ok")
    async def ok(ctx: JobContext, payload: Any) -> None:
        return None

    job_id = await enqueue(producer, "ok")
    await asyncio.sleep(0.3)  # the job waits before any worker exists
    began = time.monotonic()
    metrics = WorkerMetrics(CollectorRegistry())
    worker = Worker(worker_settings(redis_url, prefix), registry, metrics=metrics)
    async with running(worker):
        await wait_status(producer, job_id, Status.COMPLETED)
    waited = value(scrape(metrics.registry), "conveyor_job_wait_seconds_sum", queue="default",
                   type="ok")  # fmt: skip
    assert 0.3 <= waited < 0.3 + (time.monotonic() - began) + 0.5


async def test_wait_ignores_the_workers_own_clock(
    redis_url: str, prefix: str, producer: ProducerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker whose wall clock is 300 s ahead still reports the true wait: both ends are
    Redis TIME (the job's ready time, and the attempt's start as the claim records it)."""
    registry = Registry()

    @registry.handler("ok")
    async def ok(ctx: JobContext, payload: Any) -> None:
        return None

    job_id = await enqueue(producer, "ok")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 300)
    metrics = WorkerMetrics(CollectorRegistry())
    worker = Worker(worker_settings(redis_url, prefix), registry, metrics=metrics)
    async with running(worker):
        await wait_status(producer, job_id, Status.COMPLETED)
    waited = value(scrape(metrics.registry), "conveyor_job_wait_seconds_sum", queue="default",
                   type="ok")  # fmt: skip
    assert 0 <= waited < 10
