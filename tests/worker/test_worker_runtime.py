"""The worker process in-process against a real Redis: jobs, retries, cancels, shutdown,
concurrency, reclaim of dead workers' jobs, poison jobs and heartbeats."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from conveyor import codec
from conveyor.job import Outcome
from conveyor.states import Status
from conveyor.store.consumer import ClaimedJob, ClaimResult, Completion, ConsumerStore, Failure
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.values import CancelOutcome
from conveyor.worker.context import JobContext
from conveyor.worker.errors import JobCancelled, PermanentError
from conveyor.worker.executor import Attempt, StopReason
from conveyor.worker.registry import Registry
from conveyor.worker.runtime import Worker
from tests.helpers.wait import eventually_async
from tests.worker.support import (
    enqueue,
    enqueue_many,
    pending_entries,
    running,
    scheduling,
    subscribers,
    wait_all,
    wait_status,
    worker_settings,
)

pytestmark = pytest.mark.anyio

DEAD = "dead-1"


async def until(check: Any, timeout: float = 10.0, what: str = "condition") -> Any:  # noqa: ASYNC109
    """Poll a plain (sync) check from async code."""

    async def poll() -> Any:
        return check()

    return await eventually_async(poll, timeout=timeout, interval=0.01, what=what)


async def stream_length(r: Redis, keys: Keys) -> int:
    return int(await r.xlen(keys.queue("default").stream))


async def seed_dead_claim(
    r: Redis, keys: Keys, job_id: str, *, max_deliveries: int = 5
) -> tuple[ConsumerStore, ClaimedJob]:
    """Start an attempt of `job_id` as consumer "dead-1", which then never finishes it or
    renews its lease: what a worker killed mid-job leaves behind."""
    dead = ConsumerStore(r, keys, DEAD, max_deliveries=max_deliveries, result_ttl_seconds=600)
    await dead.ensure_groups(["default"])
    deliveries = await dead.read(["default"], count=10, block_ms=100)
    claim = await dead.claim(deliveries)
    assert [j.job_id for j in claim.run] == [job_id]
    return dead, claim.run[0]


# --- running jobs ------------------------------------------------------------------------------


async def test_completes_jobs(
    redis_url: str, prefix: str, r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    registry = Registry()

    @registry.handler("echo")
    async def echo(ctx: JobContext, payload: Any) -> Any:
        return {"echo": payload, "attempt": ctx.attempt}

    @registry.handler("upper")
    def upper(ctx: JobContext, payload: Any) -> Any:
        return {"upper": str(payload).upper(), "thread": threading.current_thread().name}

    async_ids = await enqueue_many(producer, "echo", list(range(10)))
    sync_ids = await enqueue_many(producer, "upper", [f"word{i}" for i in range(10)])
    worker = Worker(worker_settings(redis_url, prefix), registry)
    async with running(worker):
        jobs = await wait_all(producer, async_ids + sync_ids, Status.COMPLETED)
        await until(lambda: worker.outcomes.processed == 20, what="20 jobs processed")
    for i, job in enumerate(jobs[:10]):
        assert job.result == {"echo": i, "attempt": 1}
    for i, job in enumerate(jobs[10:]):
        assert job.result["upper"] == f"WORD{i}"
        assert job.result["thread"].startswith("conveyor-job")
    for job in jobs:
        assert job.attempts == 1
        assert job.finished_at is not None
        assert job.last_error is None
        assert [h.outcome for h in job.history] == [Outcome.COMPLETED]
        assert job.history[0].worker == worker.id
    assert worker.outcomes.failed == 0
    assert await stream_length(r, keys) == 0  # finished entries are acknowledged and deleted
    assert await pending_entries(r, keys) == []


async def test_failures_are_recorded(redis_url: str, prefix: str, producer: ProducerStore) -> None:
    registry = Registry()

    @registry.handler("strict")
    async def strict(ctx: JobContext, payload: Any) -> None:
        raise PermanentError("payload needs an account")

    @registry.handler("slow")
    async def slow(ctx: JobContext, payload: Any) -> None:
        await asyncio.sleep(30)

    @registry.handler("big")
    def big(ctx: JobContext, payload: Any) -> str:
        return "x" * 5000

    strict_id = await enqueue(producer, "strict")
    slow_id = await enqueue(producer, "slow", timeout_seconds=0.1, max_attempts=1)
    big_id = await enqueue(producer, "big")
    unknown_id = await enqueue(producer, "not.registered")
    settings = worker_settings(redis_url, prefix, max_payload_bytes=1024)
    worker = Worker(settings, registry)
    async with running(worker):
        jobs = await wait_all(producer, [strict_id, slow_id, big_id, unknown_id], Status.FAILED)
    strict_job, slow_job, big_job, unknown_job = jobs
    assert strict_job.last_error == "PermanentError: payload needs an account"
    assert slow_job.last_error == "timed out after 0.1s"
    assert [h.outcome for h in slow_job.history] == [Outcome.TIMED_OUT]
    assert big_job.last_error is not None
    assert big_job.last_error.startswith("invalid result: result: is ")
    assert big_job.result is None
    assert unknown_job.last_error == "no handler is registered for job type 'not.registered'"
    for job in jobs:
        assert job.attempts == 1
        assert job.status is Status.FAILED


async def test_retries_a_failing_handler_then_completes(
    redis_url: str, prefix: str, r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    registry = Registry()
    calls: list[tuple[str, int]] = []

    @registry.handler("flaky")
    async def flaky(ctx: JobContext, payload: Any) -> dict[str, int]:
        calls.append((ctx.job_id, ctx.attempt))
        if ctx.attempt < 3:
            raise RuntimeError(f"attempt {ctx.attempt} failed")
        return {"attempt": ctx.attempt}

    @registry.handler("hopeless")
    def hopeless(ctx: JobContext, payload: Any) -> None:
        raise ValueError("never works")

    flaky_id = await enqueue(producer, "flaky")
    hopeless_id = await enqueue(producer, "hopeless", max_attempts=2)
    # Recorded failures are not lost attempts: they never make a job poison.
    worker = Worker(worker_settings(redis_url, prefix, max_deliveries=1), registry)
    async with scheduling(r, keys) as scheduler, running(worker):
        done = await wait_status(producer, flaky_id, Status.COMPLETED)
        gave_up = await wait_status(producer, hopeless_id, Status.FAILED)
    assert done.result == {"attempt": 3}
    assert done.attempts == 3
    assert [h.outcome for h in done.history] == ["failed", "failed", "completed"]
    assert [h.error for h in done.history[:2]] == [
        "RuntimeError: attempt 1 failed",
        "RuntimeError: attempt 2 failed",
    ]
    assert [h.attempt for h in done.history] == [1, 2, 3]
    assert [a for j, a in calls if j == flaky_id] == [1, 2, 3]
    assert gave_up.attempts == 2
    assert gave_up.last_error == "ValueError: never works"
    assert [h.outcome for h in gave_up.history] == ["failed", "failed"]
    assert scheduler.promoted == 3  # two retries of one job, one of the other


# --- cancel --------------------------------------------------------------------------------------


async def test_cancel_of_a_running_async_job_through_pubsub(
    redis_url: str, prefix: str, r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    registry = Registry()
    started, interrupted = asyncio.Event(), asyncio.Event()

    @registry.handler("long")
    async def long(ctx: JobContext, payload: Any) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            interrupted.set()
            raise

    job_id = await enqueue(producer, "long")
    # A 30 s lease renews every 10 s: only the pub/sub message can stop the job in time.
    worker = Worker(worker_settings(redis_url, prefix, lease_seconds=30), registry)
    async with running(worker):
        await asyncio.wait_for(started.wait(), 10)
        await until(lambda: job_id in worker.attempts)
        await eventually_async(lambda: subscribers(r, keys.cancel_channel), what="listener")
        began = time.monotonic()
        outcome, requested = await producer.cancel(job_id)
        assert outcome is CancelOutcome.REQUESTED
        assert requested.cancel_requested
        job = await wait_status(producer, job_id, Status.CANCELED, timeout=1.0)
        assert time.monotonic() - began < 1.0
        assert interrupted.is_set()
        await until(lambda: not worker.attempts, what="slot freed")
    assert job.attempts == 1
    assert job.finished_at is not None
    assert job.history[-1].outcome == Outcome.CANCELED
    assert job.history[-1].error == "canceled by request"
    assert await pending_entries(r, keys) == []
    assert await stream_length(r, keys) == 0


async def test_cancel_of_a_running_sync_job(
    redis_url: str, prefix: str, r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    registry = Registry()
    started, saw_cancel = threading.Event(), threading.Event()

    @registry.handler("crunch")
    def crunch(ctx: JobContext, payload: Any) -> str:
        started.set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                ctx.raise_if_cancelled()
            except JobCancelled:
                saw_cancel.set()
                raise
            time.sleep(0.01)
        return "not canceled"

    job_id = await enqueue(producer, "crunch")
    worker = Worker(worker_settings(redis_url, prefix, lease_seconds=30), registry)
    async with running(worker):
        await until(started.is_set, what="handler started")
        await eventually_async(lambda: subscribers(r, keys.cancel_channel), what="listener")
        outcome, _ = await producer.cancel(job_id)
        assert outcome is CancelOutcome.REQUESTED
        job = await wait_status(producer, job_id, Status.CANCELED, timeout=1.0)
        await until(saw_cancel.is_set, timeout=2, what="the handler saw ctx.cancelled")
    assert job.history[-1].outcome == Outcome.CANCELED
    assert await pending_entries(r, keys) == []


async def test_cancel_through_lease_renewal_when_the_message_is_missed(
    redis_url: str, prefix: str, r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    registry = Registry()
    started = asyncio.Event()

    @registry.handler("long")
    async def long(ctx: JobContext, payload: Any) -> None:
        started.set()
        await asyncio.sleep(30)

    job_id = await enqueue(producer, "long")
    worker = Worker(worker_settings(redis_url, prefix, lease_seconds=1), registry)
    async with running(worker):
        await asyncio.wait_for(started.wait(), 10)
        assert (await producer.get(job_id)).status is Status.RUNNING
        # What the cancel script writes, without its PUBLISH: the message was missed.
        await r.hset(keys.queue("default").job(job_id), "cancel_requested", 1)
        # The lease is renewed every lease/3 s; the renewal reports the cancel request.
        job = await wait_status(producer, job_id, Status.CANCELED, timeout=1.5)
    assert job.history[-1].outcome == Outcome.CANCELED
    assert job.history[-1].error == "canceled by request"
    assert await pending_entries(r, keys) == []


async def test_a_cancel_between_claim_and_start_still_ends_the_job(
    redis_url: str, prefix: str, r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    """A cancel handled after the worker launched the job's task but before that task first
    ran must still end the job canceled and free the worker's slot."""
    registry = Registry()
    calls: list[str] = []

    @registry.handler("quick")
    async def quick(ctx: JobContext, payload: Any) -> None:
        calls.append(ctx.job_id)

    job_id = await enqueue(producer, "quick")
    worker = Worker(worker_settings(redis_url, prefix, lease_seconds=30), registry)
    real_claim, real_fetch, real_launch = worker.store.claim, worker.store.fetch, worker._launch

    async def cancel_claimed(result: ClaimResult) -> None:
        for job in result.run:
            outcome, _ = await producer.cancel(job.job_id)
            assert outcome is CancelOutcome.REQUESTED

    async def claim_then_cancel(deliveries: Any, **options: Any) -> Any:
        result = await real_claim(deliveries, **options)
        await cancel_claimed(result)
        return result

    async def fetch_then_cancel(*args: Any, **options: Any) -> Any:
        result, deliveries = await real_fetch(*args, **options)
        await cancel_claimed(result)
        return result, deliveries

    def launch_then_stop(job: ClaimedJob) -> Attempt:
        attempt = real_launch(job)
        attempt.stop(StopReason.CANCEL)  # before the task's first step
        return attempt

    worker.store.claim = claim_then_cancel  # type: ignore[method-assign]
    worker.store.fetch = fetch_then_cancel  # type: ignore[method-assign]
    worker._launch = launch_then_stop  # type: ignore[method-assign]
    async with running(worker):
        job = await wait_status(producer, job_id, Status.CANCELED, timeout=5)
        await until(lambda: not worker.attempts, timeout=2, what="slot freed")
        assert worker.free_slots() == worker.concurrency
    assert calls == []
    assert job.history[-1].outcome == Outcome.CANCELED
    assert await pending_entries(r, keys) == []


# --- shutdown ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_graceful_stop_hands_a_long_job_back(
    redis_url: str, prefix: str, r: Redis, keys: Keys, producer: ProducerStore, kind: str
) -> None:
    registry = Registry()
    started, stopped = threading.Event(), threading.Event()

    async def long_async(ctx: JobContext, payload: Any) -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            stopped.set()
        return "finished"

    def long_sync(ctx: JobContext, payload: Any) -> str:
        started.set()
        ctx.cancelled.wait(30)
        stopped.set()
        ctx.raise_if_cancelled()  # how a sync handler stops (returning would complete it)
        return "finished"

    registry.register("long", long_async if kind == "async" else long_sync)
    job_id = await enqueue(producer, "long")
    worker = Worker(worker_settings(redis_url, prefix, shutdown_timeout_seconds=0.2), registry)
    async with running(worker) as task:
        await until(started.is_set, what="handler started")
        began = time.monotonic()
        worker.request_stop()
        await asyncio.wait_for(task, 10)
        assert time.monotonic() - began < 3
    await until(stopped.is_set, timeout=2, what="the handler was stopped")
    job = await producer.get(job_id)
    assert job.status is Status.PENDING
    assert job.attempts == 0  # the attempt is not charged
    assert job.worker is None
    assert job.history[-1].outcome == Outcome.RETURNED
    assert job.history[-1].attempt == 1
    assert job.history[-1].worker == worker.id
    assert await stream_length(r, keys) == 1  # a fresh entry waits for the next worker
    assert await pending_entries(r, keys, consumer=worker.id) == []
    assert await pending_entries(r, keys) == []
    assert not await r.exists(keys.worker(worker.id))


async def test_a_returned_job_runs_again_on_the_next_worker(
    redis_url: str, prefix: str, producer: ProducerStore
) -> None:
    registry = Registry()
    started = asyncio.Event()

    @registry.handler("once.slow")
    async def once_slow(ctx: JobContext, payload: Any) -> dict[str, Any]:
        if not started.is_set():
            started.set()
            await asyncio.sleep(30)
        return {"worker": ctx.worker_id, "attempt": ctx.attempt}

    job_id = await enqueue(producer, "once.slow")
    # A hand-back at shutdown is not a lost attempt: it never makes a job poison.
    settings = worker_settings(redis_url, prefix, max_deliveries=1)
    first = Worker(settings, registry, worker_id="first")
    async with running(first) as task:
        await asyncio.wait_for(started.wait(), 10)
        first.request_stop()
        await asyncio.wait_for(task, 10)
    assert (await producer.get(job_id)).status is Status.PENDING
    second = Worker(settings, registry, worker_id="second")
    async with running(second):
        job = await wait_status(producer, job_id, Status.COMPLETED)
    assert job.result == {"worker": "second", "attempt": 1}
    assert job.attempts == 1
    assert [(h.outcome, h.worker) for h in job.history] == [
        (Outcome.RETURNED, "first"),
        (Outcome.COMPLETED, "second"),
    ]


async def test_jobs_that_finish_within_the_grace_period_complete(
    redis_url: str, prefix: str, r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    registry = Registry()
    started: list[str] = []

    @registry.handler("short")
    async def short(ctx: JobContext, payload: Any) -> str:
        started.append(ctx.job_id)
        await asyncio.sleep(0.4)
        return "done"

    job_ids = await enqueue_many(producer, "short", [1, 2, 3])
    worker = Worker(worker_settings(redis_url, prefix, shutdown_timeout_seconds=5), registry)
    async with running(worker) as task:
        await until(lambda: len(started) == 3, what="three jobs started")
        began = time.monotonic()
        worker.request_stop()
        await asyncio.wait_for(task, 10)
        assert time.monotonic() - began < 3  # it did not wait out the whole grace period
    for job_id in job_ids:
        job = await producer.get(job_id)
        assert job.status is Status.COMPLETED
        assert job.result == "done"
        assert [h.outcome for h in job.history] == [Outcome.COMPLETED]
    assert worker.outcomes.processed == 3
    assert await pending_entries(r, keys) == []


async def test_a_second_stop_request_skips_the_grace_period(
    redis_url: str, prefix: str, producer: ProducerStore
) -> None:
    registry = Registry()
    started = asyncio.Event()

    @registry.handler("long")
    async def long(ctx: JobContext, payload: Any) -> None:
        started.set()
        await asyncio.sleep(30)

    job_id = await enqueue(producer, "long")
    worker = Worker(worker_settings(redis_url, prefix, shutdown_timeout_seconds=60), registry)
    async with running(worker) as task:
        await asyncio.wait_for(started.wait(), 10)
        began = time.monotonic()
        worker.request_stop()
        done, _ = await asyncio.wait([task], timeout=0.3)
        assert not done  # still inside the 60 s grace period
        worker.request_stop()
        await asyncio.wait_for(task, 10)
        assert time.monotonic() - began < 5
    job = await producer.get(job_id)
    assert job.status is Status.PENDING
    assert job.history[-1].outcome == Outcome.RETURNED


# --- concurrency ---------------------------------------------------------------------------------


async def test_concurrency_is_never_exceeded(
    redis_url: str, prefix: str, producer: ProducerStore
) -> None:
    registry = Registry()
    now_running = 0
    most = 0

    @registry.handler("count")
    async def count(ctx: JobContext, payload: Any) -> int:
        nonlocal now_running, most
        now_running += 1
        most = max(most, now_running)
        try:
            await asyncio.sleep(0.02)
        finally:
            now_running -= 1
        return int(payload)

    job_ids = await enqueue_many(producer, "count", list(range(50)))
    worker = Worker(worker_settings(redis_url, prefix, concurrency=4), registry)
    async with running(worker):
        jobs = await wait_all(producer, job_ids, Status.COMPLETED)
        assert worker.in_flight <= 4
    assert most == 4
    assert [j.result for j in jobs] == list(range(50))
    assert all(j.attempts == 1 for j in jobs)


async def test_the_next_job_starts_while_an_outcome_is_being_written(
    redis_url: str, prefix: str, producer: ProducerStore
) -> None:
    """A slot is the handler's: once it has returned, the next job may start during the
    finisher's round trip, but no more than `concurrency` outcomes wait for Redis."""
    registry = Registry()
    started: list[int] = []

    @registry.handler("quick")
    async def quick(ctx: JobContext, payload: Any) -> int:
        started.append(int(payload))
        return int(payload)

    job_ids = await enqueue_many(producer, "quick", list(range(5)))
    worker = Worker(worker_settings(redis_url, prefix, concurrency=2), registry)
    gate = asyncio.Event()
    real_put = worker.finisher.put
    holding: list[asyncio.Task[None]] = []

    def held_put(item: Any) -> asyncio.Future[str]:
        status: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def later() -> None:
            await gate.wait()  # Redis is slow to take the outcomes
            status.set_result(await real_put(item))

        holding.append(asyncio.create_task(later()))
        return status

    worker.finisher.put = held_put  # type: ignore[method-assign]
    async with running(worker):
        await until(lambda: len(started) == 4, what="four handlers ran")
        await asyncio.sleep(0.3)  # room for a fifth start, which must not come
        assert (len(started), len(worker.attempts), worker.free_slots()) == (4, 4, 0)
        assert worker.in_flight == 0  # no handler runs: all four outcomes wait for Redis
        gate.set()
        jobs = await wait_all(producer, job_ids, Status.COMPLETED)
    assert sorted(started) == list(range(5))
    assert [j.result for j in jobs] == list(range(5))


# --- dead workers --------------------------------------------------------------------------------


async def test_a_second_worker_reclaims_the_job_of_a_dead_one(
    redis_url: str, prefix: str, r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    registry = Registry()
    started, release = asyncio.Event(), asyncio.Event()

    @registry.handler("work")
    async def work(ctx: JobContext, payload: Any) -> dict[str, Any]:
        started.set()
        await release.wait()
        return {"worker": ctx.worker_id, "attempt": ctx.attempt}

    job_id = await enqueue(producer, "work", {"n": 1})
    dead, dead_job = await seed_dead_claim(r, keys, job_id)
    assert dead_job.attempt == 1
    assert (await producer.get(job_id)).worker == DEAD
    channel = keys.schedule_channel
    worker = Worker(worker_settings(redis_url, prefix, lease_seconds=1), registry)
    async with running(worker):
        await asyncio.wait_for(started.wait(), 10)  # after the dead consumer's lease ran out
        now_running = await producer.get(job_id)
        assert now_running.status is Status.RUNNING
        assert now_running.worker == worker.id
        assert now_running.attempts == 2
        # The dead worker wakes up and finishes its old attempt: nothing may change.
        late = [
            await dead.finish(completions=[Completion(dead_job, codec.encode("late"))],
                              schedule_channel=channel),
            await dead.finish(failures=[Failure(dead_job, "late", Outcome.FAILED, True, 0)],
                              schedule_channel=channel),
            await dead.finish(requeues=[dead_job], schedule_channel=channel),
        ]  # fmt: skip
        assert late == [{job_id: "stale"}] * 3
        unchanged = await producer.get(job_id)
        assert unchanged == now_running
        [entry] = await pending_entries(r, keys)
        assert entry["consumer"].decode() == worker.id
        release.set()
        job = await wait_status(producer, job_id, Status.COMPLETED)
    assert job.result == {"worker": worker.id, "attempt": 2}
    assert job.attempts == 2
    assert job.deliveries == 2
    assert job.history[0].outcome == Outcome.LOST
    assert job.history[0].worker == DEAD
    assert job.history[0].attempt == 1
    assert job.history[0].error == f"worker {DEAD} stopped renewing its lease"
    assert job.history[1].outcome == Outcome.COMPLETED
    assert job.history[1].worker == worker.id
    assert worker.reclaimer.reclaimed == 1
    # A finish arriving even later is stale as well, and changes nothing.
    completion = Completion(dead_job, codec.encode("later"))
    assert await dead.finish(completions=[completion], schedule_channel=channel) == {
        job_id: "stale"
    }
    assert await producer.get(job_id) == job
    assert await pending_entries(r, keys) == []


async def test_a_job_whose_attempts_keep_getting_lost_fails_as_poison(
    redis_url: str, prefix: str, r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    registry = Registry()
    calls: list[int] = []

    @registry.handler("poison")
    async def poison(ctx: JobContext, payload: Any) -> None:
        calls.append(ctx.attempt)

    job_id = await enqueue(producer, "poison")
    await seed_dead_claim(r, keys, job_id, max_deliveries=1)
    settings = worker_settings(redis_url, prefix, lease_seconds=1, max_deliveries=1)
    worker = Worker(settings, registry)
    async with running(worker):
        job = await wait_status(producer, job_id, Status.FAILED)
        await until(lambda: worker.outcomes.failed == 1, what="failure counted")
    assert calls == []  # never run again
    assert job.last_error is not None
    assert "max_deliveries=1" in job.last_error
    assert job.last_error.startswith("poison: ")
    assert job.attempts == 1
    assert job.history[-1].outcome == Outcome.LOST
    assert await pending_entries(r, keys) == []
    assert await stream_length(r, keys) == 0


# --- heartbeat -----------------------------------------------------------------------------------


async def test_heartbeat_while_running_and_removed_after_stop(
    redis_url: str, prefix: str, r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    registry = Registry()

    @registry.handler("long")
    async def long(ctx: JobContext, payload: Any) -> None:
        await asyncio.sleep(30)

    worker = Worker(worker_settings(redis_url, prefix, concurrency=3), registry)
    key = keys.worker(worker.id)

    async def beat() -> dict[str, str] | None:
        raw: Any = await r.hgetall(key)
        return {k.decode(): v.decode() for k, v in raw.items()} or None

    async with running(worker) as task:
        first = await eventually_async(beat, what="heartbeat hash")
        assert first["concurrency"] == "3"
        assert first["queues"] == "default"
        assert await r.zscore(keys.workers, worker.id) is not None
        # The hash lives 3 heartbeats (0.6 s) unless renewed; it is renewed.
        later = await eventually_async(
            lambda: _newer(beat, int(first["last_seen"]) + 700), what="renewed heartbeat"
        )
        assert await r.pttl(key) > 0
        await enqueue(producer, "long")
        await eventually_async(lambda: _field(beat, "in_flight", "1"), what="in_flight=1")
        assert int(later["processed"]) == 0
        worker.request_stop()
        await asyncio.wait_for(task, 10)
    assert not await r.exists(key)
    assert await r.zscore(keys.workers, worker.id) is None


async def _newer(beat: Any, after_ms: int) -> dict[str, str] | None:
    fields = await beat()
    return fields if fields and int(fields["last_seen"]) >= after_ms else None


async def _field(beat: Any, name: str, value: str) -> bool:
    fields = await beat()
    return bool(fields) and fields[name] == value


async def test_stop_ends_even_when_a_component_loses_its_cancellation(
    redis_url: str, prefix: str
) -> None:
    """On Python 3.11, redis-py's `asyncio.wait_for` can swallow a cancellation that arrives
    as a command completes; a background loop that lost it must not hang the shutdown."""
    worker = Worker(worker_settings(redis_url, prefix), Registry())
    swallowed: list[bool] = []

    async def stubborn_heartbeat() -> None:
        while True:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed.append(True)  # lost once, as the Redis call would lose it

    worker.heartbeat.run = stubborn_heartbeat  # type: ignore[method-assign]
    async with running(worker) as task:
        await until(lambda: worker._background, what="components started")
        worker.request_stop()
        await asyncio.wait_for(task, 5)
    assert swallowed == [True]
