"""Runs one attempt of a job: find its handler, call it under its timeout, and turn what
happened into the record the finisher writes (completion, failure, or hand-back)."""

from __future__ import annotations

import asyncio
import contextvars
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

from shared import codec
from shared.backoff import RetryPolicy
from shared.errors import ValidationError
from shared.job import Outcome
from shared.store.consumer import ClaimedJob, Completion, Failure
from worker.context import JobContext
from worker.errors import JobCancelled
from worker.registry import HandlerSpec, Registry
from worker.retry import decide, effective_max_attempts

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
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="conveyor-job")

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
        try:
            async with asyncio.timeout(timeout) as deadline:
                result = await self._call(spec, ctx, codec.decode(job.payload))
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

    async def _call(self, spec: HandlerSpec, ctx: JobContext, payload: object) -> object:
        if spec.is_async:
            return await spec.fn(ctx, payload)
        loop = asyncio.get_running_loop()
        run = contextvars.copy_context().run  # logging context follows into the thread
        return await loop.run_in_executor(self.pool, run, spec.fn, ctx, payload)

    def _stopped(self, attempt: Attempt, max_attempts: int) -> Finish | None:
        reason = attempt.stop_reason
        if reason is StopReason.SHUTDOWN:
            return Requeue(attempt.job)
        if reason is StopReason.CANCEL:
            return Failure(
                attempt.job, "canceled by request", Outcome.CANCELED, False, 0, max_attempts
            )
        if reason is StopReason.LOST:
            return None
        raise asyncio.CancelledError  # not ours: let it propagate

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


def describe(exc: BaseException) -> str:
    """`Type: message`, the form kept in last_error and the history."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
