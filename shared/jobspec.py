"""The rules for what a producer may ask of a new job, shared by every way in.

The HTTP API (`api/dto.py`), the Python client and the CLI all check fields with these
functions, so a job that one of them accepts, the others accept too.
"""

from __future__ import annotations

import time
from datetime import datetime

from shared import codec
from shared.errors import ValidationError
from shared.ids import new_job_id, validate_job_type, validate_queue
from shared.store.producer import NewJob

DEFAULT_QUEUE = "default"
MAX_ATTEMPTS = 1000
MAX_DELAY_SECONDS = 365 * 24 * 3600
MAX_TIMEOUT_SECONDS = 24 * 3600


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def max_attempts(value: object, field: str = "max_attempts") -> int | None:
    """None (not given) or an integer 1..MAX_ATTEMPTS; booleans and strings are refused."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(field, "must be an integer")
    if not 1 <= value <= MAX_ATTEMPTS:
        raise ValidationError(field, f"must be between 1 and {MAX_ATTEMPTS}")
    return value


def timeout_ms(value: object, field: str = "timeout_seconds") -> int | None:
    """None (not given) or seconds in (0, MAX_TIMEOUT_SECONDS], as whole milliseconds."""
    if value is None:
        return None
    if not _is_number(value):
        raise ValidationError(field, "must be a number")
    assert isinstance(value, (int, float))
    if not 0 < value <= MAX_TIMEOUT_SECONDS:
        raise ValidationError(field, f"must be greater than 0 and at most {MAX_TIMEOUT_SECONDS}")
    return max(1, round(value * 1000))


def due_ms(
    delay: object,
    run_at_ms: int | None,
    now_ms: int,
    *,
    delay_field: str = "delay_seconds",
    run_at_field: str = "run_at",
) -> int | None:
    """Absolute due time (epoch ms) from a delay in seconds or an absolute time; None means
    now. A `run_at` in the past means now."""
    if delay is not None and run_at_ms is not None:
        raise ValidationError(run_at_field, "cannot be combined with delay_seconds")
    if delay is not None:
        if not _is_number(delay):
            raise ValidationError(delay_field, "must be a number")
        assert isinstance(delay, (int, float))
        if not 0 <= delay <= MAX_DELAY_SECONDS:
            raise ValidationError(
                delay_field, f"must be between 0 and {MAX_DELAY_SECONDS} (365 days)"
            )
        delay_ms = round(delay * 1000)
        return now_ms + delay_ms if delay_ms > 0 else None
    return run_at_ms


def datetime_ms(value: datetime, field: str = "run_at") -> int:
    if value.tzinfo is None:
        raise ValidationError(field, "must include a timezone (for example UTC)")
    return int(value.timestamp() * 1000)


def build(
    job_type: str,
    payload: codec.JsonValue = None,
    *,
    queue: str = DEFAULT_QUEUE,
    max_attempts: int | None = None,
    timeout_seconds: float | None = None,
    delay_seconds: float | None = None,
    run_at: datetime | None = None,
    correlation_id: str | None = None,
    max_payload_bytes: int | None = None,
    field_prefix: str = "",
) -> NewJob:
    """A validated NewJob for the Python client; `ValidationError` names the first bad
    field (prefixed with `field_prefix`, e.g. ``jobs/3/``)."""
    p = field_prefix
    now = int(time.time() * 1000)
    run_at_ms = None if run_at is None else datetime_ms(run_at, f"{p}run_at")
    return NewJob(
        id=new_job_id(),
        type=validate_job_type(job_type, f"{p}type"),
        queue=validate_queue(queue, f"{p}queue"),
        payload=codec.encode(payload, field=f"{p}payload", limit=max_payload_bytes),
        max_attempts=_max(max_attempts, f"{p}max_attempts"),
        timeout_ms=timeout_ms(timeout_seconds, f"{p}timeout_seconds"),
        correlation_id=correlation_id,
        due_ms=due_ms(
            delay_seconds,
            run_at_ms,
            now,
            delay_field=f"{p}delay_seconds",
            run_at_field=f"{p}run_at",
        ),
    )


_max = max_attempts  # `build` has a parameter of the same name
