"""What to send for each call of the API, and how to read its answer: the `Call` descriptions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import httpx

from conveyor import jobspec
from conveyor.errors import ValidationError
from conveyor.http_client.answers import read_cancel, read_items, read_job, read_jobs, read_page
from conveyor.ids import ms_to_rfc3339, validate_job_id
from conveyor.job import Job
from conveyor.store.producer import CancelOutcome, Page

T = TypeVar("T")

IDEMPOTENCY_HEADER = "Idempotency-Key"
CORRELATION_HEADER = "X-Correlation-ID"
# Options an item of `enqueue_many` may carry (the batch body has no per-item correlation id).
_ITEM_OPTIONS = frozenset(
    {"queue", "max_attempts", "timeout_seconds", "delay_seconds", "run_at", "idempotency_key"}
)


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[httpx.Response], T]
    ok: frozenset[int] = frozenset({200})
    params: tuple[tuple[str, str], ...] | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    repeatable: bool = True  # harmless to send twice
    job_id: str | None = None  # the job the path names (for JobNotFound)
    event: str = ""  # the transition asked for (for InvalidTransition)
    idempotency_keys: tuple[str | None, ...] = ()  # per item of a batch


def _base_headers(correlation_id: str | None) -> dict[str, str]:
    return {CORRELATION_HEADER: correlation_id} if correlation_id else {}


def _job_body(
    job_type: str,
    payload: Any,
    *,
    queue: str | None,
    max_attempts: int | None,
    timeout_seconds: float | None,
    delay_seconds: float | None,
    run_at: datetime | None,
    field_prefix: str = "",
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": job_type, "payload": payload}
    if queue is not None:
        body["queue"] = queue
    if max_attempts is not None:
        body["max_attempts"] = max_attempts
    if timeout_seconds is not None:
        body["timeout_seconds"] = timeout_seconds
    if delay_seconds is not None:
        body["delay_seconds"] = delay_seconds
    if run_at is not None:
        body["run_at"] = _rfc3339(run_at, f"{field_prefix}run_at")
    return body


def _rfc3339(value: datetime, field: str) -> str:
    text = ms_to_rfc3339(jobspec.datetime_ms(value, field))  # refuses naive datetimes
    assert text is not None
    return text


def enqueue_call(
    job_type: str,
    payload: Any = None,
    *,
    queue: str | None = None,
    max_attempts: int | None = None,
    timeout_seconds: float | None = None,
    delay_seconds: float | None = None,
    run_at: datetime | None = None,
    idempotency_key: str | None = None,
    correlation_id: str | None = None,
) -> Call[Job]:
    headers = _base_headers(correlation_id)
    if idempotency_key is not None:
        headers[IDEMPOTENCY_HEADER] = idempotency_key
    body = _job_body(
        job_type,
        payload,
        queue=queue,
        max_attempts=max_attempts,
        timeout_seconds=timeout_seconds,
        delay_seconds=delay_seconds,
        run_at=run_at,
    )
    return Call(
        "POST",
        "/jobs",
        read_job,
        ok=frozenset({200, 201}),
        body=body,
        headers=headers,
        repeatable=idempotency_key is not None,
        idempotency_keys=(idempotency_key,),
    )


Item = tuple[str, Any] | tuple[str, Any, Mapping[str, Any]]
# Aliases for the return types of the clients' methods (whose `list` shadows the builtin).
Jobs = list[Job]
Items = list[dict[str, Any]]


def enqueue_many_call(items: Iterable[Item], correlation_id: str | None = None) -> Call[list[Job]]:
    jobs: list[dict[str, Any]] = []
    keys: list[str | None] = []
    for i, item in enumerate(items):
        job_type, payload = item[0], item[1]
        options: Mapping[str, Any] = item[2] if len(item) > 2 else {}
        unknown = sorted(set(options) - _ITEM_OPTIONS)
        if unknown:
            raise ValidationError(f"jobs/{i}/{unknown[0]}", "is not an option of a batch item")
        body = _job_body(
            job_type,
            payload,
            queue=options.get("queue"),
            max_attempts=options.get("max_attempts"),
            timeout_seconds=options.get("timeout_seconds"),
            delay_seconds=options.get("delay_seconds"),
            run_at=options.get("run_at"),
            field_prefix=f"jobs/{i}/",
        )
        key = options.get("idempotency_key")
        if key is not None:
            body["idempotency_key"] = key
        keys.append(key)
        jobs.append(body)
    return Call(
        "POST",
        "/jobs/batch",
        read_jobs,
        ok=frozenset({200, 201}),
        body={"jobs": jobs},
        headers=_base_headers(correlation_id),
        repeatable=bool(jobs) and None not in keys,
        idempotency_keys=tuple(keys),
    )


def _job_path(job_id: str) -> str:
    # Checked here, as shared.client does: an id is never anything but a path segment.
    return f"/jobs/{validate_job_id(job_id)}"


def get_call(job_id: str) -> Call[Job]:
    return Call("GET", _job_path(job_id), read_job, job_id=job_id)


def cancel_call(job_id: str) -> Call[tuple[CancelOutcome, Job]]:
    return Call(
        "DELETE",
        _job_path(job_id),
        read_cancel,
        ok=frozenset({200, 202}),
        job_id=job_id,
        event="cancel",
    )


def replay_call(job_id: str) -> Call[Job]:
    return Call(
        "POST",
        _job_path(job_id) + "/retry",
        read_job,
        repeatable=False,  # a second replay of a job already replayed is refused (409)
        job_id=job_id,
        event="replay",
    )


def list_call(
    *,
    status: str | Sequence[str] | None = None,
    queue: str | None = None,
    type: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> Call[Page]:
    statuses = (status,) if isinstance(status, str) else tuple(status or ())
    params: list[tuple[str, str]] = [("status", str(s)) for s in statuses]
    for name, value in (("queue", queue), ("type", type), ("cursor", cursor)):
        if value is not None:
            params.append((name, value))
    if limit is not None:
        params.append(("limit", str(limit)))
    if created_after is not None:
        params.append(("created_after", _rfc3339(created_after, "created_after")))
    if created_before is not None:
        params.append(("created_before", _rfc3339(created_before, "created_before")))
    return Call("GET", "/jobs", read_page, params=tuple(params))


def queues_call() -> Call[list[dict[str, Any]]]:
    return Call("GET", "/queues", read_items)


def workers_call() -> Call[list[dict[str, Any]]]:
    return Call("GET", "/workers", read_items)
