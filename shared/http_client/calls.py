"""What to send for each call of the API, and how to read its answer: the `Call` descriptions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, Unpack

import httpx

from conveyor import jobspec
from conveyor.client_api import EnqueueOptions, Item, JobOptions, Jobs, ListFilter, Queues, Workers
from conveyor.http_client.answers import (
    read_cancel,
    read_job,
    read_jobs,
    read_page,
    read_queue,
    read_queues,
    read_workers,
)
from conveyor.ids import ms_to_rfc3339, validate_job_id, validate_queue
from conveyor.job import Job
from conveyor.values import CancelOutcome, Page, QueueStats

T = TypeVar("T")

IDEMPOTENCY_HEADER = "Idempotency-Key"
CORRELATION_HEADER = "X-Correlation-ID"


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


# The options a job's JSON body carries as they are (run_at and expires_at are sent as
# RFC 3339 text).
_BODY_OPTIONS = (
    "queue",
    "max_attempts",
    "timeout_seconds",
    "delay_seconds",
    "expire_after_seconds",
    "limit_key",
    "unique_key",
    "unique_for_seconds",
)


def _job_body(
    job_type: str, payload: Any, options: JobOptions, field_prefix: str = ""
) -> dict[str, Any]:
    """The JSON of one job; options that are absent or None are left to the API."""
    body: dict[str, Any] = {"type": job_type, "payload": payload}
    for name in _BODY_OPTIONS:
        value = options.get(name)
        if value is not None:
            body[name] = value
    run_at = options.get("run_at")
    if run_at is not None:
        body["run_at"] = _rfc3339(jobspec.datetime_ms(run_at, f"{field_prefix}run_at"))
    expires_at = options.get("expires_at")
    if expires_at is not None:
        ms = jobspec.datetime_ms(expires_at, f"{field_prefix}expires_at")
        body["expires_at"] = _rfc3339(ms)
    return body


def _rfc3339(ms: int) -> str:
    text = ms_to_rfc3339(ms)
    assert text is not None
    return text


def enqueue_call(
    job_type: str, payload: Any = None, **options: Unpack[EnqueueOptions]
) -> Call[Job]:
    jobspec.known_options(options, jobspec.ENQUEUE_OPTIONS)
    headers = _base_headers(options.get("correlation_id"))
    idempotency_key = options.get("idempotency_key")
    if idempotency_key is not None:
        headers[IDEMPOTENCY_HEADER] = idempotency_key
    return Call(
        "POST",
        "/jobs",
        read_job,
        ok=frozenset({200, 201}),
        body=_job_body(job_type, payload, options),
        headers=headers,
        repeatable=idempotency_key is not None,
        idempotency_keys=(idempotency_key,),
    )


def enqueue_many_call(items: Iterable[Item], correlation_id: str | None = None) -> Call[Jobs]:
    jobs: list[dict[str, Any]] = []
    keys: list[str | None] = []
    for i, item in enumerate(items):
        job_type, payload, options = jobspec.batch_options(item, i)
        body = _job_body(job_type, payload, options, field_prefix=f"jobs/{i}/")
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
    # Checked here, as conveyor.client does: an id is never anything but a path segment.
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


def list_call(filters: ListFilter) -> Call[Page]:
    """``GET /jobs`` with the filters, checked here as `Client.list` checks them."""
    query = jobspec.list_query(filters)
    params: list[tuple[str, str]] = [("status", s.value) for s in query.statuses]
    for name, value in (("queue", query.queue), ("type", query.type), ("cursor", query.cursor)):
        if value is not None:
            params.append((name, value))
    params.append(("limit", str(query.limit)))
    if query.created_after_ms is not None:
        params.append(("created_after", _rfc3339(query.created_after_ms)))
    if query.created_before_ms is not None:
        params.append(("created_before", _rfc3339(query.created_before_ms)))
    params.append(("include", ",".join(sorted(query.include))))
    return Call("GET", "/jobs", read_page, params=tuple(params))


def queues_call() -> Call[Queues]:
    return Call("GET", "/queues", read_queues)


def queue_call(name: str) -> Call[QueueStats | None]:
    """``GET /queues/{name}``: its 404 (no such queue) reads as None."""
    path = f"/queues/{validate_queue(name)}"
    return Call("GET", path, read_queue, ok=frozenset({200, 404}))


def pause_call(name: str, paused: bool) -> Call[QueueStats | None]:
    """``POST /queues/{name}/pause`` (`paused`) or ``/resume``: its 404 (no such queue)
    reads as None. Repeatable: pausing twice is pausing once."""
    path = f"/queues/{validate_queue(name)}/{'pause' if paused else 'resume'}"
    return Call("POST", path, read_queue, ok=frozenset({200, 404}))


def workers_call() -> Call[Workers]:
    return Call("GET", "/workers", read_workers)


def _found(response: httpx.Response) -> bool:
    """A resize's answer: False for the 404 of an unknown worker or queue."""
    return response.status_code != 404


def resize_worker_call(worker_id: str, concurrency: int | None) -> Call[bool]:
    """``PUT /workers/{id}/concurrency``; the same value twice is harmless."""
    path = f"/workers/{jobspec.validate_worker_id(worker_id)}/concurrency"
    body = {"concurrency": jobspec.valid_concurrency(concurrency)}
    return Call("PUT", path, _found, ok=frozenset({200, 404}), body=body)


def resize_queue_call(queue: str, concurrency: int | None) -> Call[bool]:
    """``PUT /queues/{name}/concurrency``."""
    path = f"/queues/{validate_queue(queue)}/concurrency"
    body = {"concurrency": jobspec.valid_concurrency(concurrency)}
    return Call("PUT", path, _found, ok=frozenset({200, 404}), body=body)
