"""One attempt of a job, from handler call to the record the finisher writes. No Redis: the
claimed jobs are built by hand."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conveyor import codec
from conveyor.backoff import Jitter, RetryPolicy
from conveyor.errors import ValidationError
from conveyor.ids import new_job_id
from conveyor.job import Outcome
from conveyor.logs import current_context, log_context
from conveyor.store.consumer import ClaimedJob, Completion, Failure
from conveyor.worker.context import JobContext
from conveyor.worker.errors import JobCancelled, PermanentError
from conveyor.worker.executor import (
    MAX_ERROR_CHARS,
    Attempt,
    ExecutionDefaults,
    Executor,
    Finish,
    Requeue,
    StopReason,
)
from conveyor.worker.registry import Registry

pytestmark = pytest.mark.anyio

DEFAULT_POLICY = RetryPolicy(base_seconds=0.5, factor=2.0, max_seconds=10.0, jitter=Jitter.NONE)
DEFAULTS = ExecutionDefaults(max_attempts=3, timeout_seconds=5.0, retry=DEFAULT_POLICY)


def claimed(
    job_type: str = "job",
    payload: Any = None,
    *,
    attempt: int = 1,
    timeout_ms: int | None = None,
    max_attempts: int | None = None,
) -> ClaimedJob:
    return ClaimedJob(
        queue="default",
        job_id=new_job_id(),
        entry_id="1700000000000-0",
        token="worker-1:1",
        attempt=attempt,
        type=job_type,
        payload=codec.encode(payload),
        timeout_ms=timeout_ms,
        correlation_id="corr-1",
        max_attempts=max_attempts,
        ready_at_ms=0,
    )


def attempt_of(job: ClaimedJob, max_attempts: int = 3) -> Attempt:
    ctx = JobContext(
        job_id=job.job_id,
        type=job.type,
        queue=job.queue,
        attempt=job.attempt,
        max_attempts=max_attempts,
        correlation_id=job.correlation_id,
        worker_id="worker-1",
    )
    return Attempt(job, ctx)


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def executor(registry: Registry) -> Iterator[Executor]:
    ex = Executor(registry, DEFAULTS, threads=2)
    yield ex
    ex.close()


async def run(executor: Executor, job: ClaimedJob) -> Finish | None:
    return await executor.execute(attempt_of(job))


def failure(finish: Finish | None) -> Failure:
    assert isinstance(finish, Failure), finish
    return finish


async def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


# --- outcomes ------------------------------------------------------------------------------------


async def test_completion_carries_the_encoded_result(
    executor: Executor, registry: Registry
) -> None:
    seen: list[JobContext] = []

    @registry.handler("echo")
    async def echo(ctx: JobContext, payload: Any) -> Any:
        seen.append(ctx)
        return {"got": payload, "attempt": ctx.attempt, "n": [1, 2.5, None, True]}

    job = claimed("echo", {"hello": "world"}, attempt=2)
    finish = await run(executor, job)
    assert isinstance(finish, Completion)
    assert finish.job is job
    expected = {"got": {"hello": "world"}, "attempt": 2, "n": [1, 2.5, None, True]}
    assert codec.decode(finish.result) == expected
    assert finish.result == codec.encode(expected)
    assert seen[0].job_id == job.job_id
    assert not seen[0].cancelled.is_set()


async def test_a_none_result_is_a_completion(executor: Executor, registry: Registry) -> None:
    registry.register("nothing", lambda ctx, payload: None)
    finish = await run(executor, claimed("nothing"))
    assert isinstance(finish, Completion)
    assert codec.decode(finish.result) is None


async def test_unknown_type_fails_for_good_naming_the_type(executor: Executor) -> None:
    job = claimed("reports.unknown", max_attempts=7)
    f = failure(await run(executor, job))
    assert f.retryable is False
    assert f.outcome == Outcome.FAILED
    assert "'reports.unknown'" in f.error
    assert f.error == "no handler is registered for job type 'reports.unknown'"
    assert f.max_attempts == 7
    assert f.delay_ms == 0


async def test_permanent_error_is_not_retried(executor: Executor, registry: Registry) -> None:
    @registry.handler("strict")
    async def strict(ctx: JobContext, payload: Any) -> None:
        raise PermanentError("payload needs an account")

    f = failure(await run(executor, claimed("strict")))
    assert f.retryable is False
    assert f.outcome == Outcome.FAILED
    assert f.error == "PermanentError: payload needs an account"
    assert f.delay_ms == 0


async def test_ordinary_exception_is_retried_after_the_backoff(
    executor: Executor, registry: Registry
) -> None:
    @registry.handler("flaky")
    async def flaky(ctx: JobContext, payload: Any) -> None:
        raise RuntimeError("upstream said no")

    first = failure(await run(executor, claimed("flaky", attempt=1)))
    assert first.retryable is True
    assert first.outcome == Outcome.FAILED
    assert first.error == "RuntimeError: upstream said no"
    assert first.delay_ms == 500  # base 0.5 s, no jitter
    assert first.max_attempts == 3
    second = failure(await run(executor, claimed("flaky", attempt=2)))
    assert second.retryable is True
    assert second.delay_ms == 1000
    last = failure(await run(executor, claimed("flaky", attempt=3)))
    assert last.retryable is False  # attempts used up
    assert last.delay_ms == 0


async def test_an_exception_without_a_message_is_named_by_its_type(
    executor: Executor, registry: Registry
) -> None:
    @registry.handler("bare")
    def bare(ctx: JobContext, payload: Any) -> None:
        raise KeyError

    f = failure(await run(executor, claimed("bare")))
    assert f.error == "KeyError"
    assert f.retryable is True


async def test_long_error_messages_are_cut(executor: Executor, registry: Registry) -> None:
    @registry.handler("chatty")
    async def chatty(ctx: JobContext, payload: Any) -> None:
        raise RuntimeError("x" * 10_000)

    f = failure(await run(executor, claimed("chatty")))
    assert len(f.error) == MAX_ERROR_CHARS
    assert f.error.startswith("RuntimeError: xxx")


async def test_handler_backoff_and_max_attempts_override_the_defaults(
    executor: Executor, registry: Registry
) -> None:
    policy = RetryPolicy(base_seconds=2.0, jitter=Jitter.NONE)

    @registry.handler("custom", max_attempts=5, backoff=policy)
    async def custom(ctx: JobContext, payload: Any) -> None:
        raise RuntimeError("again")

    f = failure(await run(executor, claimed("custom", attempt=3)))
    assert f.retryable is True  # 3 < the handler's 5, though the default is 3
    assert f.delay_ms == 8000  # 2 s * 2 ** 2
    assert f.max_attempts == 5
    job_limited = failure(await run(executor, claimed("custom", attempt=2, max_attempts=2)))
    assert job_limited.retryable is False  # the job's own max_attempts wins
    assert job_limited.max_attempts == 2


async def test_limits_precedence(executor: Executor, registry: Registry) -> None:
    registry.register("plain", lambda ctx, payload: None)
    registry.register("tuned", lambda ctx, payload: None, max_attempts=6, timeout=9.0)
    assert executor.limits(claimed("plain"))[1:] == (3, 5.0)
    assert executor.limits(claimed("tuned"))[1:] == (6, 9.0)
    assert executor.limits(claimed("tuned", max_attempts=2, timeout_ms=250))[1:] == (2, 0.25)
    assert executor.limits(claimed("plain", max_attempts=4, timeout_ms=1500))[1:] == (4, 1.5)
    spec, max_attempts, timeout = executor.limits(claimed("unknown"))
    assert spec is None
    assert (max_attempts, timeout) == (3, 5.0)


# --- timeouts ------------------------------------------------------------------------------------


async def test_async_handler_times_out(executor: Executor, registry: Registry) -> None:
    interrupted = asyncio.Event()

    @registry.handler("slow", timeout=0.05)
    async def slow(ctx: JobContext, payload: Any) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            interrupted.set()
            raise

    attempt = attempt_of(claimed("slow"))
    started = time.monotonic()
    f = failure(await executor.execute(attempt))
    assert time.monotonic() - started < 2
    assert f.outcome == Outcome.TIMED_OUT
    assert f.error == "timed out after 0.05s"
    assert f.retryable is True
    assert f.delay_ms == 500
    assert attempt.ctx.cancelled.is_set()
    assert interrupted.is_set()


async def test_the_job_timeout_wins_over_the_handler_timeout(
    executor: Executor, registry: Registry
) -> None:
    @registry.handler("slow", timeout=30)
    async def slow(ctx: JobContext, payload: Any) -> None:
        await asyncio.sleep(30)

    f = failure(await run(executor, claimed("slow", timeout_ms=40, attempt=3)))
    assert f.outcome == Outcome.TIMED_OUT
    assert f.error == "timed out after 0.04s"
    assert f.retryable is False  # the last attempt


async def test_sync_handler_times_out_and_sees_cancelled(
    executor: Executor, registry: Registry
) -> None:
    saw_cancel = threading.Event()

    @registry.handler("blocking", timeout=0.05)
    def blocking(ctx: JobContext, payload: Any) -> str:
        if ctx.cancelled.wait(10):
            saw_cancel.set()
        return "too late"

    attempt = attempt_of(claimed("blocking"))
    f = failure(await executor.execute(attempt))
    assert f.outcome == Outcome.TIMED_OUT
    assert f.error == "timed out after 0.05s"
    assert f.retryable is True
    assert attempt.ctx.cancelled.is_set()
    await wait_until(saw_cancel.is_set)  # the thread was told, and has returned


async def test_a_handler_raising_timeout_error_is_an_ordinary_failure(
    executor: Executor, registry: Registry
) -> None:
    @registry.handler("upstream", timeout=10)
    async def upstream(ctx: JobContext, payload: Any) -> None:
        raise TimeoutError("the upstream API did not answer")

    @registry.handler("upstream.sync", timeout=10)
    def upstream_sync(ctx: JobContext, payload: Any) -> None:
        raise TimeoutError

    attempt = attempt_of(claimed("upstream"))
    f = failure(await executor.execute(attempt))
    assert f.outcome == Outcome.FAILED
    assert f.error == "TimeoutError: the upstream API did not answer"
    assert f.retryable is True
    assert not attempt.ctx.cancelled.is_set()
    g = failure(await run(executor, claimed("upstream.sync")))
    assert g.outcome == Outcome.FAILED
    assert g.error == "TimeoutError"


# --- results -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "result",
    [{1, 2}, object(), float("nan"), {"when": b"bytes"}, {1: "int key"}, 2**70],
    ids=["set", "object", "nan", "bytes", "int-key", "huge-int"],
)
async def test_a_non_json_result_fails_for_good(
    executor: Executor, registry: Registry, result: object
) -> None:
    registry.register("weird", lambda ctx, payload: result)
    f = failure(await run(executor, claimed("weird")))
    assert f.retryable is False
    assert f.outcome == Outcome.FAILED
    assert f.error.startswith("invalid result: result: ")


async def test_a_result_over_the_size_limit_fails_for_good(registry: Registry) -> None:
    registry.register("big", lambda ctx, payload: "x" * payload)
    defaults = ExecutionDefaults(3, 5.0, DEFAULT_POLICY, max_result_bytes=1024)
    executor = Executor(registry, defaults, threads=1)
    try:
        assert isinstance(await run(executor, claimed("big", 500)), Completion)
        f = failure(await run(executor, claimed("big", 5000)))
    finally:
        executor.close()
    assert f.retryable is False
    assert f.error.startswith("invalid result: result: is ")
    assert "more than 1024" in f.error


async def test_a_validation_error_raised_by_the_handler_is_its_own_failure(
    executor: Executor, registry: Registry
) -> None:
    @registry.handler("enqueues")
    async def enqueues(ctx: JobContext, payload: Any) -> None:
        raise ValidationError("type", "must match [A-Za-z0-9._-]{1,64}")

    f = failure(await run(executor, claimed("enqueues")))
    assert f.error == "ValidationError: type: must match [A-Za-z0-9._-]{1,64}"
    assert f.retryable is True


# --- sync handlers -------------------------------------------------------------------------------


async def test_sync_handlers_run_in_the_pool_with_the_log_context(
    executor: Executor, registry: Registry
) -> None:
    @registry.handler("where")
    def where(ctx: JobContext, payload: Any) -> dict[str, Any]:
        return {"thread": threading.current_thread().name, "context": dict(current_context())}

    @registry.handler("where.async")
    async def where_async(ctx: JobContext, payload: Any) -> dict[str, Any]:
        return {"thread": threading.current_thread().name, "context": dict(current_context())}

    job = claimed("where")
    with log_context(job_id=job.job_id, worker="worker-1", attempt=1, queue="default"):
        finish = await run(executor, job)
        async_finish = await run(executor, claimed("where.async"))
    assert isinstance(finish, Completion)
    result = codec.decode(finish.result)
    assert result["thread"].startswith("conveyor-job")
    assert result["thread"] != threading.current_thread().name
    expected = {"job_id": job.job_id, "worker": "worker-1", "attempt": 1, "queue": "default"}
    assert result["context"] == expected
    assert isinstance(async_finish, Completion)
    assert codec.decode(async_finish.result)["thread"] == threading.current_thread().name
    assert current_context() == {}


async def test_sync_handlers_run_in_parallel_up_to_the_pool_size(registry: Registry) -> None:
    barrier = threading.Barrier(3, timeout=5)
    registry.register("meet", lambda ctx, payload: barrier.wait())
    executor = Executor(registry, DEFAULTS, threads=3)
    try:
        finishes = await asyncio.gather(*(run(executor, claimed("meet")) for _ in range(3)))
    finally:
        executor.close()
    assert all(isinstance(f, Completion) for f in finishes)


# --- stopping ------------------------------------------------------------------------------------


def long_async(registry: Registry, started: asyncio.Event, interrupted: asyncio.Event) -> None:
    @registry.handler("long")
    async def long(ctx: JobContext, payload: Any) -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            interrupted.set()
            raise
        return "finished"


async def stopped_while_running(
    executor: Executor, registry: Registry, reason: StopReason
) -> tuple[Finish | None, Attempt]:
    started, interrupted = asyncio.Event(), asyncio.Event()
    long_async(registry, started, interrupted)
    attempt = attempt_of(claimed("long"))
    attempt.task = asyncio.create_task(executor.execute(attempt))
    await asyncio.wait_for(started.wait(), 5)
    attempt.stop(reason)
    finish = await asyncio.wait_for(attempt.task, 5)
    assert interrupted.is_set()
    assert attempt.ctx.cancelled.is_set()
    assert attempt.stop_reason is reason
    return finish, attempt


async def test_cancel_while_running_is_a_canceled_failure(
    executor: Executor, registry: Registry
) -> None:
    finish, attempt = await stopped_while_running(executor, registry, StopReason.CANCEL)
    f = failure(finish)
    assert f.job is attempt.job
    assert f.outcome == Outcome.CANCELED
    assert f.error == "canceled by request"
    assert f.retryable is False
    assert f.max_attempts == 3


async def test_shutdown_while_running_hands_the_job_back(
    executor: Executor, registry: Registry
) -> None:
    finish, attempt = await stopped_while_running(executor, registry, StopReason.SHUTDOWN)
    assert finish == Requeue(attempt.job)


async def test_a_lost_lease_records_nothing(executor: Executor, registry: Registry) -> None:
    finish, _ = await stopped_while_running(executor, registry, StopReason.LOST)
    assert finish is None


async def test_the_first_stop_reason_wins(executor: Executor, registry: Registry) -> None:
    started, interrupted = asyncio.Event(), asyncio.Event()
    long_async(registry, started, interrupted)
    attempt = attempt_of(claimed("long"))
    attempt.task = asyncio.create_task(executor.execute(attempt))
    await asyncio.wait_for(started.wait(), 5)
    attempt.stop(StopReason.CANCEL)
    attempt.stop(StopReason.SHUTDOWN)
    f = failure(await asyncio.wait_for(attempt.task, 5))
    assert f.outcome == Outcome.CANCELED


async def test_cancel_of_a_sync_handler(executor: Executor, registry: Registry) -> None:
    started, raised = threading.Event(), threading.Event()

    @registry.handler("polling")
    def polling(ctx: JobContext, payload: Any) -> str:
        started.set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                ctx.raise_if_cancelled()
            except JobCancelled:
                raised.set()
                raise
            time.sleep(0.005)
        return "never canceled"

    attempt = attempt_of(claimed("polling"))
    attempt.task = asyncio.create_task(executor.execute(attempt))
    await wait_until(started.is_set)
    attempt.stop(StopReason.CANCEL)
    f = failure(await asyncio.wait_for(attempt.task, 5))
    assert f.outcome == Outcome.CANCELED
    assert f.retryable is False
    await wait_until(raised.is_set)  # the handler saw ctx.cancelled and stopped


@pytest.mark.parametrize("reason", list(StopReason))
async def test_a_stop_before_the_attempt_started_is_still_recorded(
    executor: Executor, registry: Registry, reason: StopReason
) -> None:
    """A cancel message can be handled after the job's task was created but before it first
    ran. The attempt must still end the way the stop reason says, never as a task that was
    cancelled before it started (which nothing would record)."""
    calls: list[str] = []

    @registry.handler("never")
    async def never(ctx: JobContext, payload: Any) -> None:
        calls.append(ctx.job_id)

    attempt = attempt_of(claimed("never"))
    attempt.task = asyncio.create_task(executor.execute(attempt))
    attempt.stop(reason)  # no await in between: the task has not run yet
    finish = await asyncio.wait_for(attempt.task, 5)
    expected: dict[StopReason, Callable[[Finish | None], bool]] = {
        StopReason.CANCEL: lambda f: isinstance(f, Failure) and f.outcome == Outcome.CANCELED,
        StopReason.SHUTDOWN: lambda f: f == Requeue(attempt.job),
        StopReason.LOST: lambda f: f is None,
    }
    assert expected[reason](finish), finish
    assert calls == []


async def test_a_cancellation_that_is_not_a_stop_propagates(
    executor: Executor, registry: Registry
) -> None:
    started, interrupted = asyncio.Event(), asyncio.Event()
    long_async(registry, started, interrupted)
    attempt = attempt_of(claimed("long"))
    task = asyncio.create_task(executor.execute(attempt))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()  # e.g. the whole worker is torn down, not a stop of this attempt
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_job_cancelled_without_a_stop_is_an_ordinary_failure(
    executor: Executor, registry: Registry
) -> None:
    @registry.handler("self.check")
    def self_check(ctx: JobContext, payload: Any) -> None:
        ctx.cancelled.set()
        ctx.raise_if_cancelled()

    f = failure(await run(executor, claimed("self.check")))
    assert f.outcome == Outcome.FAILED
    assert f.error.startswith("JobCancelled: ")
    assert f.retryable is True


async def test_the_payload_reaches_the_handler_decoded(
    executor: Executor, registry: Registry
) -> None:
    got: list[Any] = []
    sync_got: list[Any] = []

    async def keep(ctx: JobContext, payload: Any) -> None:
        got.append(payload)

    registry.register("keep", keep)
    registry.register("keep.sync", lambda ctx, payload: sync_got.append(payload))
    payload = {"list": [1, "two", 3.5, None, False], "nested": {"k": "é"}}
    for job_type in ("keep", "keep.sync"):
        assert isinstance(await run(executor, claimed(job_type, payload)), Completion)
    assert got == [payload]
    assert sync_got == [payload]
