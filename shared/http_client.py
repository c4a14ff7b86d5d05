"""A typed client of the Conveyor HTTP API: the same calls as `shared.client`, over HTTP.

`HttpClient` is async (``httpx.AsyncClient``), `SyncHttpClient` blocking (``httpx.Client``).
Both describe every call as a `_Call` (method, path, query, body, headers, how to read the
answer) and read answers and errors through the same functions: only sending differs.

Errors are those of `shared.errors`: 404 `JobNotFound`, 409 `InvalidTransition`,
`IdempotencyConflict` or `DuplicateJob`, 413 `PayloadTooLarge`, 422 `ValidationError`
(naming the first invalid field). 401, 403 and anything else unexpected raise `ApiError`.

A 503 (the API's Redis did not answer) and a failure to reach the API are retried with
exponential backoff and full jitter, a few times within an overall deadline, then raise
`StoreUnavailable`. A request that may have reached the API before the connection broke
(a read timeout, a dropped connection) is retried only when repeating it is harmless: reads,
cancels, and enqueues that carry an idempotency key.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from shared import jobspec
from shared.backoff import RetryPolicy, delay_seconds
from shared.errors import (
    ConveyorError,
    DuplicateJob,
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    PayloadTooLarge,
    StoreUnavailable,
    ValidationError,
)
from shared.ids import ms_to_rfc3339, validate_job_id
from shared.job import Attempt, Job
from shared.states import Status
from shared.store.producer import CancelOutcome, Page

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 10.0
IDEMPOTENCY_HEADER = "Idempotency-Key"
CORRELATION_HEADER = "X-Correlation-ID"
_PROBLEM_PREFIX = "urn:conveyor:problem:"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Options an item of `enqueue_many` may carry (the batch body has no per-item correlation id).
_ITEM_OPTIONS = frozenset(
    {"queue", "max_attempts", "timeout_seconds", "delay_seconds", "run_at", "idempotency_key"}
)


class ApiError(ConveyorError):
    """The API answered with an error that has no better-suited exception (401, 403, 500,
    an unexpected status or an unreadable body). `problem` is its problem details object."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        title = str(problem.get("title") or "HTTP error")
        detail = problem.get("detail")
        super().__init__(f"HTTP {status} {title}" + (f": {detail}" if detail else ""))


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """How 503s and unreachable APIs are retried: at most `attempts` tries in all, waiting
    per `backoff` between them (a 503's Retry-After is honoured up to ``backoff.max_seconds``),
    and never past `deadline_seconds` after the call began."""

    attempts: int = 3
    backoff: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(base_seconds=0.2, factor=2.0, max_seconds=2.0)
    )
    deadline_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        if not self.deadline_seconds > 0:
            raise ValueError("deadline_seconds must be > 0")


# --- calls: what to send and how to read the answer -----------------------------------------


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
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
) -> _Call[Job]:
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
    return _Call(
        "POST",
        "/jobs",
        _read_job,
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


def enqueue_many_call(items: Iterable[Item], correlation_id: str | None = None) -> _Call[list[Job]]:
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
    return _Call(
        "POST",
        "/jobs/batch",
        _read_jobs,
        ok=frozenset({200, 201}),
        body={"jobs": jobs},
        headers=_base_headers(correlation_id),
        repeatable=bool(jobs) and None not in keys,
        idempotency_keys=tuple(keys),
    )


def _job_path(job_id: str) -> str:
    # Checked here, as shared.client does: an id is never anything but a path segment.
    return f"/jobs/{validate_job_id(job_id)}"


def get_call(job_id: str) -> _Call[Job]:
    return _Call("GET", _job_path(job_id), _read_job, job_id=job_id)


def cancel_call(job_id: str) -> _Call[tuple[CancelOutcome, Job]]:
    return _Call(
        "DELETE",
        _job_path(job_id),
        _read_cancel,
        ok=frozenset({200, 202}),
        job_id=job_id,
        event="cancel",
    )


def replay_call(job_id: str) -> _Call[Job]:
    return _Call(
        "POST",
        _job_path(job_id) + "/retry",
        _read_job,
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
) -> _Call[Page]:
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
    return _Call("GET", "/jobs", _read_page, params=tuple(params))


def queues_call() -> _Call[list[dict[str, Any]]]:
    return _Call("GET", "/queues", _read_items)


def workers_call() -> _Call[list[dict[str, Any]]]:
    return _Call("GET", "/workers", _read_items)


# --- reading answers -----------------------------------------------------------------------


class _BadResponse(Exception):
    """A success status whose body is not what the contract promises."""


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise _BadResponse("the body is not JSON") from exc


def _read_job(response: httpx.Response) -> Job:
    return job_from_json(_json(response))


def _read_jobs(response: httpx.Response) -> list[Job]:
    body = _json(response)
    if not isinstance(body, dict) or not isinstance(body.get("jobs"), list):
        raise _BadResponse("expected an object with a jobs array")
    return [job_from_json(item) for item in body["jobs"]]


def _read_cancel(response: httpx.Response) -> tuple[CancelOutcome, Job]:
    outcome = CancelOutcome.CANCELED if response.status_code == 200 else CancelOutcome.REQUESTED
    return outcome, _read_job(response)


def _read_page(response: httpx.Response) -> Page:
    body = _json(response)
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise _BadResponse("expected an object with an items array")
    cursor = body.get("next_cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise _BadResponse("next_cursor must be a string or null")
    return Page(items=[job_from_json(item) for item in body["items"]], next_cursor=cursor)


def _read_items(response: httpx.Response) -> list[dict[str, Any]]:
    body = _json(response)
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise _BadResponse("expected an object with an items array")
    items = body["items"]
    if not all(isinstance(item, dict) for item in items):
        raise _BadResponse("every item must be an object")
    return list(items)


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
            created_at=rfc3339_to_ms(data.get("created_at")) or 0,
            updated_at=rfc3339_to_ms(data.get("updated_at")) or 0,
            run_at=rfc3339_to_ms(data.get("run_at")),
            next_run_at=rfc3339_to_ms(data.get("next_run_at")),
            started_at=rfc3339_to_ms(data.get("started_at")),
            finished_at=rfc3339_to_ms(data.get("finished_at")),
            worker=_optional_str(data, "worker"),
            cancel_requested=bool(data.get("cancel_requested", False)),
            history=tuple(_attempt_from_json(a) for a in data.get("history") or ()),
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


def _conflicting_key(call: _Call[Any], problem: Mapping[str, Any]) -> str:
    """The key the 409 is about: the only one sent, or that of the item it names."""
    index = 0
    field, _ = _first_error(problem, "")
    match = _ITEM_FIELD.match(field)
    if match:
        index = int(match.group(1))
    keys = call.idempotency_keys
    key = keys[index] if index < len(keys) else None
    return key or ""


def _conflict(call: _Call[Any], problem: Mapping[str, Any]) -> ConveyorError:
    slug = _slug(problem)
    text = f"{problem.get('detail') or ''} {slug}".lower()
    if "idempotency" in text:
        job_id = problem.get("job_id")
        return IdempotencyConflict(_conflicting_key(call, problem), str(job_id or ""))
    if slug == "invalid-transition" or "status is" in text:
        current = problem.get("job_status")
        return InvalidTransition(
            current if isinstance(current, str) else "in another status", call.event or "change"
        )
    if slug == "duplicate-job":
        job_id = problem.get("job_id")
        return DuplicateJob(job_id if isinstance(job_id, str) else "")
    return ApiError(409, problem)


def error_for(call: _Call[Any], response: httpx.Response) -> ConveyorError:
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


def read_answer(call: _Call[T], response: httpx.Response) -> T:
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


# --- retrying ------------------------------------------------------------------------------

# Errors raised before the request could reach the API: always safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: fall back to the backoff
    return seconds if seconds >= 0 else None


class _Attempts:
    """The retry decisions of one call, shared by the sync and async clients: after each
    try, either the delay before the next one or the final outcome."""

    def __init__(self, config: RetryConfig, call: _Call[Any], timeout: float, where: str):
        self.config = config
        self.call = call
        self.timeout = timeout
        self.where = where
        self.tries = 0
        self.deadline = time.monotonic() + config.deadline_seconds

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def start_try(self) -> float:
        """Count a new try; its timeout (never past the deadline)."""
        self.tries += 1
        return max(min(self.timeout, self.remaining()), 0.001)

    def _delay(self, hint: float | None) -> float | None:
        """The wait before the next try, or None when no try is left for it."""
        if self.tries >= self.config.attempts:
            return None
        delay = delay_seconds(self.tries, self.config.backoff, random)
        if hint is not None:
            delay = max(delay, min(hint, self.config.backoff.max_seconds))
        # Leave room for the next try itself, not just the wait before it.
        return delay if delay < self.remaining() else None

    def after_response(self, response: httpx.Response) -> float | None:
        """The wait before trying again, or None: `response` is the answer."""
        if response.status_code != 503:
            return None
        return self._delay(_retry_after(response))

    def after_error(self, exc: httpx.TransportError) -> float:
        """The wait before trying again; raises `StoreUnavailable` when giving up."""
        sent = not isinstance(exc, _NOT_SENT)
        delay = None if sent and not self.call.repeatable else self._delay(None)
        if delay is not None:
            return delay
        reason = type(exc).__name__
        message = f"the API at {self.where} could not be reached ({reason}, {self.tries} tries)"
        if sent and not self.call.repeatable:
            message = (
                f"the connection to the API at {self.where} failed ({reason}); the "
                f"{self.call.method} {self.call.path} may or may not have been applied"
            )
        raise StoreUnavailable(message) from exc


def _display_url(url: str) -> str:
    """The base URL without any user:password part, fit for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _client_headers(token: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


# --- the clients ---------------------------------------------------------------------------


class HttpClient:
    """The async client. Use as ``async with HttpClient(url) as client: ...``."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryConfig()
        self.timeout_seconds = timeout_seconds
        self._where = _display_url(self.base_url)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_client_headers(token),
            timeout=timeout_seconds,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"HttpClient({self._where!r})"

    async def _send(self, call: _Call[T]) -> T:
        attempts = _Attempts(self.retry, call, self.timeout_seconds, self._where)
        while True:
            try:
                response = await self._http.request(
                    call.method,
                    call.path,
                    params=call.params,
                    json=call.body,
                    headers=call.headers,
                    timeout=attempts.start_try(),
                )
            except httpx.TransportError as exc:
                delay = attempts.after_error(exc)
            else:
                wait = attempts.after_response(response)
                if wait is None:
                    return read_answer(call, response)
                delay = wait
            await asyncio.sleep(delay)

    async def enqueue(
        self,
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
    ) -> Job:
        return await self._send(
            enqueue_call(
                job_type,
                payload,
                queue=queue,
                max_attempts=max_attempts,
                timeout_seconds=timeout_seconds,
                delay_seconds=delay_seconds,
                run_at=run_at,
                idempotency_key=idempotency_key,
                correlation_id=correlation_id,
            )
        )

    async def enqueue_many(
        self, items: Iterable[Item], *, correlation_id: str | None = None
    ) -> Jobs:
        """Create jobs in one request: `(type, payload[, options])` items, options being
        the keyword arguments of `enqueue` except `correlation_id`."""
        return await self._send(enqueue_many_call(items, correlation_id))

    async def get(self, job_id: str) -> Job:
        return await self._send(get_call(job_id))

    async def cancel(self, job_id: str) -> tuple[CancelOutcome, Job]:
        return await self._send(cancel_call(job_id))

    async def replay(self, job_id: str) -> Job:
        """Run a failed or canceled job again (``POST /jobs/{id}/retry``)."""
        return await self._send(replay_call(job_id))

    async def list(
        self,
        *,
        status: str | Sequence[str] | None = None,
        queue: str | None = None,
        type: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Page:
        return await self._send(
            list_call(
                status=status,
                queue=queue,
                type=type,
                limit=limit,
                cursor=cursor,
                created_after=created_after,
                created_before=created_before,
            )
        )

    async def queues(self) -> Items:
        return await self._send(queues_call())

    async def workers(self) -> Items:
        return await self._send(workers_call())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class SyncHttpClient:
    """The blocking client, with the calls of `HttpClient`."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryConfig | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryConfig()
        self.timeout_seconds = timeout_seconds
        self._where = _display_url(self.base_url)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=_client_headers(token),
            timeout=timeout_seconds,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"SyncHttpClient({self._where!r})"

    def _send(self, call: _Call[T]) -> T:
        attempts = _Attempts(self.retry, call, self.timeout_seconds, self._where)
        while True:
            try:
                response = self._http.request(
                    call.method,
                    call.path,
                    params=call.params,
                    json=call.body,
                    headers=call.headers,
                    timeout=attempts.start_try(),
                )
            except httpx.TransportError as exc:
                delay = attempts.after_error(exc)
            else:
                wait = attempts.after_response(response)
                if wait is None:
                    return read_answer(call, response)
                delay = wait
            time.sleep(delay)

    def enqueue(
        self,
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
    ) -> Job:
        return self._send(
            enqueue_call(
                job_type,
                payload,
                queue=queue,
                max_attempts=max_attempts,
                timeout_seconds=timeout_seconds,
                delay_seconds=delay_seconds,
                run_at=run_at,
                idempotency_key=idempotency_key,
                correlation_id=correlation_id,
            )
        )

    def enqueue_many(self, items: Iterable[Item], *, correlation_id: str | None = None) -> Jobs:
        return self._send(enqueue_many_call(items, correlation_id))

    def get(self, job_id: str) -> Job:
        return self._send(get_call(job_id))

    def cancel(self, job_id: str) -> tuple[CancelOutcome, Job]:
        return self._send(cancel_call(job_id))

    def replay(self, job_id: str) -> Job:
        return self._send(replay_call(job_id))

    def list(
        self,
        *,
        status: str | Sequence[str] | None = None,
        queue: str | None = None,
        type: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Page:
        return self._send(
            list_call(
                status=status,
                queue=queue,
                type=type,
                limit=limit,
                cursor=cursor,
                created_after=created_after,
                created_before=created_before,
            )
        )

    def queues(self) -> Items:
        return self._send(queues_call())

    def workers(self) -> Items:
        return self._send(workers_call())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = [
    "ApiError",
    "HttpClient",
    "Item",
    "RetryConfig",
    "SyncHttpClient",
    "job_from_json",
]
