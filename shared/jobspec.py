"""Turning what a producer asks for into a validated `NewJob`.

The same rules hold whether a job comes over HTTP, from the Python client or the CLI.
"""

from __future__ import annotations

import math
import time
from datetime import datetime

from shared import codec
from shared.errors import ValidationError
from shared.ids import new_job_id, validate_job_type, validate_queue
from shared.store.producer import NewJob

MAX_ATTEMPTS_LIMIT = 1000
MAX_TIMEOUT_SECONDS = 86_400.0
MAX_DELAY_SECONDS = 366 * 86_400.0


def _number(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(field, "must be a number")
    return float(value)


def check_max_attempts(value: object, field: str = "max_attempts") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, "must be an integer")
    if not 1 <= value <= MAX_ATTEMPTS_LIMIT:
        raise ValidationError(field, f"must be between 1 and {MAX_ATTEMPTS_LIMIT}")
    return value


def check_timeout(value: object, field: str = "timeout_seconds") -> float:
    seconds = _number(value, field)
    if not 0 < seconds <= MAX_TIMEOUT_SECONDS:
        raise ValidationError(field, f"must be > 0 and at most {MAX_TIMEOUT_SECONDS:g}")
    return seconds


def check_delay(value: object, field: str = "delay_seconds") -> float:
    seconds = _number(value, field)
    if not 0 <= seconds <= MAX_DELAY_SECONDS:
        raise ValidationError(field, f"must be between 0 and {MAX_DELAY_SECONDS:g}")
    return seconds


def due_ms(
    delay_seconds: float | None, run_at: datetime | None, *, field: str = "run_at"
) -> int | None:
    """Absolute due time (epoch ms) from a delay or a timezone-aware datetime."""
    if delay_seconds is not None and run_at is not None:
        raise ValidationError(field, "give either delay_seconds or run_at, not both")
    if delay_seconds is not None:
        return int(time.time() * 1000 + delay_seconds * 1000) if delay_seconds > 0 else None
    if run_at is not None:
        if run_at.tzinfo is None:
            raise ValidationError(field, "must include a timezone (for example Z)")
        return int(run_at.timestamp() * 1000)
    return None


def build(
    job_type: str,
    payload: codec.JsonValue = None,
    *,
    queue: str = "default",
    max_attempts: int | None = None,
    timeout_seconds: float | None = None,
    delay_seconds: float | None = None,
    run_at: datetime | None = None,
    correlation_id: str | None = None,
    max_payload_bytes: int | None = None,
    field_prefix: str = "",
) -> NewJob:
    """A validated NewJob; `ValidationError` names the first bad field."""
    p = field_prefix
    return NewJob(
        id=new_job_id(),
        type=validate_job_type(job_type, f"{p}type"),
        queue=validate_queue(queue, f"{p}queue"),
        payload=codec.encode(payload, field=f"{p}payload", limit=max_payload_bytes),
        max_attempts=None
        if max_attempts is None
        else check_max_attempts(max_attempts, f"{p}max_attempts"),
        timeout_ms=None
        if timeout_seconds is None
        else int(check_timeout(timeout_seconds, f"{p}timeout_seconds") * 1000),
        correlation_id=correlation_id,
        due_ms=due_ms(
            None if delay_seconds is None else check_delay(delay_seconds, f"{p}delay_seconds"),
            run_at,
            field=f"{p}run_at",
        ),
    )
