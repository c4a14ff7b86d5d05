"""Runs one attempt of a job: find its handler, call it under its timeout, and turn what
happened into the record the finisher writes (completion, failure, or hand-back)."""

from __future__ import annotations

import asyncio
import contextvars
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

from conveyor import codec
from conveyor.backoff import RetryPolicy
from conveyor.errors import ValidationError
from conveyor.job import Outcome
from conveyor.payloads import InvalidPayload
from conveyor.store.consumer import ClaimedJob, Completion, Failure
from conveyor.worker.context import JobContext
from conveyor.worker.errors import JobCancelled, PayloadRejected
from conveyor.worker.registry import HandlerSpec, Registry
from conveyor.worker.retry import decide, effective_max_attempts

MAX_ERROR_CHARS = 2000


class StopReason(StrEnum):
    CANCEL = "cancel"  # a cancel was requested for the job
    SHUTDOWN = "shutdown"  # the worker is shutting down and the grace period is over
    LOST = "lost"  # the lease was lost: another worker owns the job now


@dataclass(frozen=True, slots=True)
class Requeue:
    """Hand the job back (graceful shutdown): a new stream entry, attempt not charged."""

    job: ClaimedJob


Finish = Completion | Failure | Requeue


@dataclass(slots=True)
class Attempt:
    """A job this worker is running, and how it should stop if it must."""

    job: ClaimedJob
    ctx: JobContext
    started: float = field(default_factory=time.monotonic)
    stop_reason: StopReason | None = None
    task: asyncio.Task[Finish | None] | None = None
    running: bool = False  # `Executor.execute` has started for this attempt
    deadline: float | None = None  # monotonic time its timeout ends, once it runs
    abandoned: bool = False  # its outcome was written for it: it ignored its timeout
    thread_left_running: bool = False  # a sync handler's thread outlived the attempt

    def log_fields(self) -> dict[str, object]:
        """What every log line about this attempt carries (also outside its own task)."""
        return {
            "job_id": self.job.job_id,
            "queue": self.job.queue,
            "type": self.job.type,
            "attempt": self.job.attempt,
            "worker": self.ctx.worker_id,
            "correlation_id": self.job.correlation_id,
        }

    def stop(self, reason: StopReason) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.ctx.cancelled.set()
        # A task cancelled before its first step never runs at all, so nothing would record
        # how the attempt ended; `execute` checks `stop_reason` when it starts instead.
        if self.running and self.task is not None and not self.task.done():
            self.task.cancel()


@dataclass(frozen=True, slots=True)
class ExecutionDefaults:
    max_attempts: int
    timeout_seconds: float
    retry: RetryPolicy
    max_result_bytes: int | None = None  # largest encoded result; None: no limit


class Executor:
    def __init__(self, registry: Registry, defaults: ExecutionDefaults, threads: int) -> None:
        self.registry = registry
        self.defaults = defaults
        self.threads = threads
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="conveyor-job")
        self.hung_threads = 0  # threads left running by handlers that ignored a stop

    def limits(self, job: ClaimedJob) -> tuple[HandlerSpec | None, int, float]:
        spec = self.registry.get(job.type)
        max_attempts = effective_max_attempts(
            job.max_attempts, spec.max_attempts if spec else None, self.defaults.max_attempts
        )
        if job.timeout_ms:
            timeout = job.timeout_ms / 1000
        elif spec and spec.timeout_seconds:
            timeout = spec.timeout_seconds
        else:
            timeout = self.defaults.timeout_seconds
        return spec, max_attempts, timeout

    async def execute(self, attempt: Attempt) -> Finish | None:
        """Run the attempt; None when the lease was lost (another worker owns the job)."""
        job, ctx = attempt.job, attempt.ctx
        attempt.running = True
        spec, max_attempts, timeout = self.limits(job)
        stopped_early = attempt.stop_reason is not None
        if stopped_early:  # stopped before it started: don't call the handler at all
            return self._stopped(attempt, max_attempts)
        if spec is None:
            return Failure(
                job,
                f"no handler is registered for job type {job.type!r}",
                Outcome.FAILED,
                retryable=False,
                delay_ms=0,
                max_attempts=max_attempts,
            )
        attempt.deadline = time.monotonic() + timeout
        try:
            async with asyncio.timeout(timeout) as deadline:
                result = await self._call(spec, attempt, codec.decode(job.payload))
        except TimeoutError as exc:
            if not deadline.expired():  # the handler itself raised TimeoutError
                return self._failure(attempt, spec, max_attempts, exc)
            ctx.cancelled.set()
            return self._failure(
                attempt, spec, max_attempts, exc, f"timed out after {timeout:g}s", Outcome.TIMED_OUT
            )
        except asyncio.CancelledError:
            return self._stopped(attempt, max_attempts)
        except JobCancelled as exc:
            if attempt.stop_reason is not None:
                return self._stopped(attempt, max_attempts)
            return self._failure(attempt, spec, max_attempts, exc)
        except Exception as exc:  # any handler error is a failed attempt
            return self._failure(attempt, spec, max_attempts, exc)
        try:
            encoded = codec.encode(result, field="result", limit=self.defaults.max_result_bytes)
        except ValidationError as exc:  # the result is not a JSON value, or is too large
            return Failure(job, f"invalid result: {exc}", Outcome.FAILED, False, 0, max_attempts)
        return Completion(job, encoded)

    async def _call(self, spec: HandlerSpec, attempt: Attempt, payload: object) -> object:
        ctx = attempt.ctx
        payload = typed_payload(spec, payload)
        if spec.is_async:
            return await spec.fn(ctx, payload)
        run = contextvars.copy_context().run  # logging context follows into the thread
        work = self.pool.submit(run, spec.fn, ctx, payload)
        try:
            return await asyncio.wrap_future(work)
        except asyncio.CancelledError:
            if work.done():  # the thread ended as the stop came: its outcome stands
                return work.result()
            return await self._outlast(work, attempt)

    async def _outlast(self, work: Future[object], attempt: Attempt) -> object:
        """A sync handler must stop (timeout, cancel, shutdown) while its thread runs, and
        Python cannot stop a thread: the attempt's outcome is what the thread does next.

        On a stop request the attempt waits for the thread (it sees `ctx.cancelled`, or
        finishes anyway): handing the job back while its code still runs would start it a
        second time elsewhere, unrecorded. If that wait is cancelled too (the worker is
        exiting), the attempt is left unrecorded (`thread_left_running`): it is taken over
        once its lease runs out and counted as lost, which it is. On a timeout the thread
        is given up on at once. Either way the pool, a thread short then, is replaced so
        later jobs still get threads.
        """
        attempt.ctx.cancelled.set()
        if attempt.stop_reason is None:  # the timeout's cancellation
            self._give_up(work, attempt)
            raise asyncio.CancelledError
        try:
            return await asyncio.shield(asyncio.wrap_future(work))
        except asyncio.CancelledError:
            self._give_up(work, attempt)
            raise

    def _give_up(self, work: Future[object], attempt: Attempt) -> None:
        """Leave a still-running thread behind, and the pool it held a thread of."""
        if work.done():
            return
        attempt.thread_left_running = True
        self.pool.shutdown(wait=False)
        self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="conveyor-job")
        self.hung_threads += 1

    def _stopped(self, attempt: Attempt, max_attempts: int) -> Finish | None:
        reason = attempt.stop_reason
        if reason is StopReason.SHUTDOWN:
            # Not handed back while its handler's thread still runs (see `_outlast`).
            return None if attempt.thread_left_running else Requeue(attempt.job)
        if reason is StopReason.CANCEL:
            return Failure(
                attempt.job, "canceled by request", Outcome.CANCELED, False, 0, max_attempts
            )
        if reason is StopReason.LOST:
            return None
        raise asyncio.CancelledError  # not ours: let it propagate

    def ignored_timeout(self, attempt: Attempt) -> Failure:
        """The failure of an attempt that outlived its timeout by ignoring the cancellation
        (see `worker.hung_handlers`); retried under the retry policy like any timeout."""
        spec, max_attempts, timeout = self.limits(attempt.job)
        message = f"timed out after {timeout:g}s; the handler ignored the cancellation"
        if spec is None:  # pragma: no cover - an attempt without a handler never runs
            return Failure(attempt.job, message, Outcome.TIMED_OUT, False, 0, max_attempts)
        return self._failure(
            attempt, spec, max_attempts, TimeoutError(), message, Outcome.TIMED_OUT
        )

    def _failure(
        self,
        attempt: Attempt,
        spec: HandlerSpec,
        max_attempts: int,
        error: BaseException,
        message: str | None = None,
        outcome: str = Outcome.FAILED,
    ) -> Failure:
        message = message or describe(error)
        policy = spec.backoff or self.defaults.retry
        decision = decide(error, attempt.job.attempt, max_attempts, policy)
        return Failure(
            attempt.job,
            message[:MAX_ERROR_CHARS],
            outcome,
            decision.retryable,
            decision.delay_ms,
            max_attempts,
        )

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def typed_payload(spec: HandlerSpec, payload: object) -> object:
    """The payload as the handler takes it: a typed payload is validated and loaded as its
    type, and one that does not fit fails the job for good (`PayloadRejected`, a
    `PermanentError`) naming the bad fields; a plain payload is passed on as it is."""
    if spec.payload_type is None:
        return payload
    try:
        return spec.payload_type.load(payload)
    except InvalidPayload as exc:
        kind = spec.payload_type.annotation.__qualname__
        raise PayloadRejected(f"the payload is not a valid {kind}: {exc}") from None


def describe(exc: BaseException) -> str:
    """`Type: message`, the form kept in last_error and the history."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
