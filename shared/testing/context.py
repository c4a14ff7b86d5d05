"""A `JobContext` for calling one handler directly in a test."""

from __future__ import annotations

from conveyor.errors import ValidationError
from conveyor.ids import new_job_id, validate_job_id, validate_job_type, validate_queue
from conveyor.worker.context import JobContext

TEST_WORKER_ID = "conveyor-test"


def make_context(
    job_type: str = "test.job",
    *,
    job_id: str | None = None,
    queue: str = "default",
    attempt: int = 1,
    max_attempts: int = 3,
    correlation_id: str | None = None,
    worker_id: str = TEST_WORKER_ID,
    cancelled: bool = False,
) -> JobContext:
    """The context a worker would pass to the handler of `job_type` on attempt `attempt`.

    `cancelled=True` gives a context whose job was asked to stop already
    (`ctx.raise_if_cancelled()` raises `JobCancelled`). A bad value raises
    `ValidationError` naming the argument.
    """
    validate_job_type(job_type, "job_type")
    validate_queue(queue, "queue")
    if job_id is not None:
        validate_job_id(job_id, "job_id")
    _at_least_one(attempt, "attempt")
    _at_least_one(max_attempts, "max_attempts")
    if correlation_id is not None and not isinstance(correlation_id, str):
        raise ValidationError("correlation_id", "must be a string or None")
    if not isinstance(worker_id, str) or not worker_id:
        raise ValidationError("worker_id", "must be a non-empty string")
    ctx = JobContext(
        job_id=job_id or new_job_id(),
        type=job_type,
        queue=queue,
        attempt=attempt,
        max_attempts=max_attempts,
        correlation_id=correlation_id,
        worker_id=worker_id,
    )
    if cancelled:
        ctx.cancelled.set()
    return ctx


def _at_least_one(value: object, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(field, f"must be an integer >= 1, got {value!r}")
