"""Reading the API's answers: results from success bodies, exceptions from error answers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from conveyor.errors import (
    ConveyorError,
    DuplicateJob,
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    PayloadTooLarge,
    QueueLimitReached,
    StoreUnavailable,
    ValidationError,
)
from conveyor.job import Attempt, Job
from conveyor.states import Status
from conveyor.values import CancelOutcome, Page, QueueStats, WorkerInfo

if TYPE_CHECKING:
    from conveyor.http_client.calls import Call

T = TypeVar("T")

_PROBLEM_PREFIX = "urn:conveyor:problem:"
# The integer fields of a queue's JSON.
QUEUE_COUNTS = (
    "waiting",
    "pending_in_group",
    "running",
    "scheduled",
    "retrying",
    "failed",
    "completed",
    "canceled",
    "consumers",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ApiError(ConveyorError):
    """The API answered with an error that has no better-suited exception (401, 403, 500,
    an unexpected status or an unreadable body). `problem` is its problem details object."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        title = str(problem.get("title") or "HTTP error")
        detail = problem.get("detail")
        super().__init__(f"HTTP {status} {title}" + (f": {detail}" if detail else ""))


class _BadResponse(Exception):
    """A success status whose body is not what the contract promises."""


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise _BadResponse("the body is not JSON") from exc


def read_job(response: httpx.Response) -> Job:
    return job_from_json(_json(response))


def read_jobs(response: httpx.Response) -> list[Job]:
    body = _json(response)
    if not isinstance(body, dict) or not isinstance(body.get("jobs"), list):
        raise _BadResponse("expected an object with a jobs array")
    return [job_from_json(item) for item in body["jobs"]]


def read_cancel(response: httpx.Response) -> tuple[CancelOutcome, Job]:
    outcome = CancelOutcome.CANCELED if response.status_code == 200 else CancelOutcome.REQUESTED
    return outcome, read_job(response)


def read_page(response: httpx.Response) -> Page:
    body = _json(response)
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise _BadResponse("expected an object with an items array")
    cursor = body.get("next_cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise _BadResponse("next_cursor must be a string or null")
    return Page(items=[job_from_json(item) for item in body["items"]], next_cursor=cursor)


def _items(response: httpx.Response) -> list[dict[str, Any]]:
    body = _json(response)
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise _BadResponse("expected an object with an items array")
    items = body["items"]
    if not all(isinstance(item, dict) for item in items):
        raise _BadResponse("every item must be an object")
    return list(items)


def _count(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _BadResponse(f"{name} must be an integer")
    return value


def _optional_int(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    return None if value is None else _count(data, name)


def queue_from_json(data: Mapping[str, Any]) -> QueueStats:
    """The `QueueStats` that ``QueueStats.to_json()`` produced."""
    if not isinstance(data.get("name"), str):
        raise _BadResponse("a queue's name must be a string")
    age = data.get("oldest_waiting_age_seconds")
    if age is not None and (isinstance(age, bool) or not isinstance(age, int | float)):
        raise _BadResponse("oldest_waiting_age_seconds must be a number or null")
    # `expired` and `paused` are newer than the other fields: an API from before them
    # (during a rolling upgrade) leaves them out.
    paused = data.get("paused", False)
    if not isinstance(paused, bool):
        raise _BadResponse("paused must be a boolean")
    counts = {name: _count(data, name) for name in QUEUE_COUNTS}
    return QueueStats(
        name=data["name"],
        oldest_waiting_age_seconds=None if age is None else float(age),
        expired=_count(data, "expired") if "expired" in data else 0,
        paused=paused,
        **counts,
    )


def worker_from_json(data: Mapping[str, Any]) -> WorkerInfo:
    """The `WorkerInfo` that ``WorkerInfo.to_json()`` produced (fields the API adds, such
    as ``stale``, are not part of it)."""
    worker_id, queues = data.get("id"), data.get("queues")
    if not isinstance(worker_id, str):
        raise _BadResponse("a worker's id must be a string")
    if not isinstance(queues, list) or not all(isinstance(q, str) for q in queues):
        raise _BadResponse("a worker's queues must be an array of strings")
    return WorkerInfo(
        id=worker_id,
        host=_optional_str(data, "host"),
        pid=_optional_int(data, "pid"),
        queues=tuple(queues),
        concurrency=_optional_int(data, "concurrency"),
        in_flight=_optional_int(data, "in_flight"),
        processed=_optional_int(data, "processed"),
        failed=_optional_int(data, "failed"),
        started_at=rfc3339_to_ms(data.get("started_at")),
        last_seen=rfc3339_to_ms(data.get("last_seen")),
    )


def read_queues(response: httpx.Response) -> list[QueueStats]:
    return [queue_from_json(item) for item in _items(response)]


def read_queue(response: httpx.Response) -> QueueStats | None:
    """A queue, or None for the 404 of an unknown queue."""
    if response.status_code == 404:
        return None
    body = _json(response)
    if not isinstance(body, dict):
        raise _BadResponse("a queue must be an object")
    return queue_from_json(body)


def read_workers(response: httpx.Response) -> list[WorkerInfo]:
    return [worker_from_json(item) for item in _items(response)]


def rfc3339_to_ms(value: str | None) -> int | None:
    """Epoch milliseconds of an RFC 3339 time as the API writes it (None stays None)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _BadResponse(f"expected an RFC 3339 time, got {type(value).__name__}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _BadResponse(f"expected an RFC 3339 time, got {value[:40]!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _optional_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise _BadResponse(f"{name} must be a string or null")
    return value


def _attempt_from_json(data: Any) -> Attempt:
    if not isinstance(data, dict):
        raise _BadResponse("a history item must be an object")
    return Attempt(
        attempt=int(data.get("attempt") or 0),
        worker=_optional_str(data, "worker"),
        started_at=rfc3339_to_ms(data.get("started_at")),
        finished_at=rfc3339_to_ms(data.get("finished_at")),
        outcome=str(data.get("outcome") or ""),
        error=_optional_str(data, "error"),
    )


def job_from_json(data: Any) -> Job:
    """The `Job` that ``Job.to_json()`` produced (times back to epoch milliseconds).

    ``deliveries`` is not part of the JSON, so it reads as 0.
    """
    if not isinstance(data, dict):
        raise _BadResponse("a job must be an object")
    try:
        timeout = data.get("timeout_seconds")
        max_attempts = data.get("max_attempts")
        return Job(
            id=str(data["id"]),
            type=str(data["type"]),
            queue=str(data["queue"]),
            status=Status(data["status"]),
            payload=data.get("payload"),
            result=data.get("result"),
            attempts=int(data.get("attempts") or 0),
            max_attempts=None if max_attempts is None else int(max_attempts),
            timeout_seconds=None if timeout is None else float(timeout),
            last_error=_optional_str(data, "last_error"),
            correlation_id=_optional_str(data, "correlation_id"),
            limit_key=_optional_str(data, "limit_key"),
            schedule=_optional_str(data, "schedule"),
            created_at=rfc3339_to_ms(data.get("created_at")) or 0,
            updated_at=rfc3339_to_ms(data.get("updated_at")) or 0,
            run_at=rfc3339_to_ms(data.get("run_at")),
            next_run_at=rfc3339_to_ms(data.get("next_run_at")),
            started_at=rfc3339_to_ms(data.get("started_at")),
            finished_at=rfc3339_to_ms(data.get("finished_at")),
            worker=_optional_str(data, "worker"),
            cancel_requested=bool(data.get("cancel_requested", False)),
            history=tuple(_attempt_from_json(a) for a in data.get("history") or ()),
            expires_at=rfc3339_to_ms(data.get("expires_at")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _BadResponse(f"not a job: {type(exc).__name__}: {exc}") from exc


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    return {"title": response.reason_phrase or "HTTP error", "status": response.status_code}


def _slug(problem: Mapping[str, Any]) -> str:
    kind = problem.get("type")
    if isinstance(kind, str) and kind.startswith(_PROBLEM_PREFIX):
        return kind[len(_PROBLEM_PREFIX) :]
    return ""


def _first_error(problem: Mapping[str, Any], default_field: str) -> tuple[str, str]:
    errors = problem.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return str(first.get("field") or default_field), str(first.get("message") or "")
    return default_field, str(problem.get("detail") or problem.get("title") or "is invalid")


_ITEM_FIELD = re.compile(r"jobs/(\d+)/")


def _conflicting_key(call: Call[Any], problem: Mapping[str, Any]) -> str:
    """The key the 409 is about: the only one sent, or that of the item it names."""
    index = 0
    field, _ = _first_error(problem, "")
    match = _ITEM_FIELD.match(field)
    if match:
        index = int(match.group(1))
    keys = call.idempotency_keys
    key = keys[index] if index < len(keys) else None
    return key or ""


def _conflict(call: Call[Any], problem: Mapping[str, Any]) -> ConveyorError:
    slug = _slug(problem)
    if slug == "queue-limit":
        limit, queues = problem.get("max_queues"), problem.get("queues")
        return QueueLimitReached(
            limit if isinstance(limit, int) else 0,
            [str(q) for q in queues] if isinstance(queues, list) else [],
        )
    text = f"{problem.get('detail') or ''} {slug}".lower()
    if "idempotency" in text:
        job_id = problem.get("job_id")
        return IdempotencyConflict(
            _conflicting_key(call, problem), job_id if isinstance(job_id, str) else None
        )
    if slug == "invalid-transition" or "status is" in text:
        current = problem.get("job_status")
        return InvalidTransition(
            current if isinstance(current, str) else "in another status", call.event or "change"
        )
    if slug == "duplicate-job":
        job_id = problem.get("job_id")
        return DuplicateJob(job_id if isinstance(job_id, str) else "")
    return ApiError(409, problem)


def error_for(call: Call[Any], response: httpx.Response) -> ConveyorError:
    """The exception that stands for an error answer to `call`."""
    status = response.status_code
    problem = _problem(response)
    if status == 404 and call.job_id is not None:
        return JobNotFound(call.job_id)
    if status == 409:
        return _conflict(call, problem)
    if status == 413:
        return PayloadTooLarge(*_first_error(problem, "body"))
    if status == 422:
        return ValidationError(*_first_error(problem, "request"))
    if status == 503:
        detail = problem.get("detail") or "the API's job store is unavailable"
        return StoreUnavailable(str(detail))
    return ApiError(status, problem)


def read_answer(call: Call[T], response: httpx.Response) -> T:
    """The result of `call` from its final response, or the mapped error raised."""
    if response.status_code not in call.ok:
        raise error_for(call, response)
    try:
        return call.read(response)
    except _BadResponse as exc:
        raise ApiError(
            response.status_code,
            {"title": "Invalid response", "status": response.status_code, "detail": str(exc)},
        ) from exc
