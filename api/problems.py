"""RFC 9457 problem details: every error the API answers is `application/problem+json`.

A problem body is ``{type, title, status, detail}``; validation problems add
``errors: [{field, message}]`` naming every offending input. Exceptions of shared.errors and
Redis failures are mapped here, in one table. Nothing from inside the process (tracebacks,
exception text of unexpected errors, the Redis URL) ever reaches a response.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from redis import exceptions as redis_errors
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ExceptionHandler

from conveyor.errors import (
    DuplicateJob,
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    NotReplicated,
    PayloadTooLarge,
    QueueLimitReached,
    StoreUnavailable,
    ValidationError,
)
from conveyor.redis_errors import store_not_serving

log = logging.getLogger("conveyor.api")

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 1  # how long a client should wait before retrying a 503
_TYPE_PREFIX = "urn:conveyor:problem:"
_MAX_ECHO = 100  # characters of client-supplied text (a field name) echoed back at most


class ProblemResponse(Response):
    """A problem details document. Rendered ASCII-only, so any client-supplied text it
    echoes (even a lone surrogate) is always valid JSON in valid UTF-8."""

    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


class Problem(Exception):
    """An HTTP error raised while handling a request (bad body, bad media type, ...)."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})


class InvalidFields(ValidationError):
    """Several inputs are invalid at once: each is reported in the problem's `errors`."""

    def __init__(self, errors: Sequence[ValidationError]) -> None:
        first = errors[0]
        super().__init__(first.field, first.message)
        self.errors = list(errors)


class PayloadsTooLarge(PayloadTooLarge):
    """Several payloads (of a batch) are too large: each is reported in `errors`."""

    def __init__(self, errors: Sequence[ValidationError]) -> None:
        first = errors[0]
        super().__init__(first.field, first.message)
        self.errors = list(errors)


def echo(text: str) -> str:
    """Client-supplied text made safe to quote in a problem: bounded length."""
    return text if len(text) <= _MAX_ECHO else text[:_MAX_ECHO] + "..."


def problem_response(
    status: int,
    slug: str | None,
    title: str,
    detail: str | None = None,
    *,
    errors: Sequence[ValidationError] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ProblemResponse:
    """A problem+json response. `slug` None means the generic type ``about:blank``."""
    body: dict[str, Any] = {
        "type": f"{_TYPE_PREFIX}{slug}" if slug else "about:blank",
        "title": title,
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = [{"field": echo(e.field), "message": e.message} for e in errors]
    if extra:
        body.update(extra)
    return ProblemResponse(body, status_code=status, headers=dict(headers or {}))


def unavailable_response() -> ProblemResponse:
    return problem_response(
        503,
        "store-unavailable",
        "Service Unavailable",
        "the job store did not answer in time; retry later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def internal_error_response() -> ProblemResponse:
    return problem_response(
        500, "internal-error", "Internal Server Error", "an unexpected error occurred"
    )


# -- exception handlers -------------------------------------------------------------------


def _problem(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.slug, exc.title, exc.detail, headers=exc.headers)


def _http(_: Request, exc: Exception) -> Response:
    """Starlette's own errors: no route (404), wrong method (405, keeps its Allow header)."""
    assert isinstance(exc, HTTPException)
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = "Error"
    detail = exc.detail if exc.detail and exc.detail != phrase else None
    return problem_response(exc.status_code, None, phrase, detail, headers=exc.headers)


def _too_large(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, PayloadTooLarge)
    errors = exc.errors if isinstance(exc, PayloadsTooLarge) else [exc]
    return problem_response(
        413,
        "payload-too-large",
        "Content Too Large",
        "; ".join(f"{echo(e.field)} {e.message}" for e in errors),
        errors=errors,
    )


def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    errors = exc.errors if isinstance(exc, InvalidFields) else [exc]
    detail = "; ".join(f"{echo(e.field)} {e.message}" for e in errors)
    return problem_response(422, "validation-error", "Unprocessable Content", detail, errors=errors)


def _not_found(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, JobNotFound)
    return job_not_found_response(exc.job_id)


def job_not_found_response(job_id: str | None) -> ProblemResponse:
    detail = f"no job has the id {job_id}" if job_id else "no job has this id"
    return problem_response(404, "job-not-found", "Not Found", detail)


def _invalid_transition(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidTransition)
    return problem_response(
        409,
        "invalid-transition",
        "Conflict",
        f"cannot {exc.event} the job: its status is {exc.current}",
        extra={"job_status": exc.current},
    )


def _duplicate(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, DuplicateJob)
    return problem_response(
        409, "duplicate-job", "Conflict", f"a job with the id {exc.job_id} already exists"
    )


def _idempotency_conflict(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, IdempotencyConflict)
    return idempotency_conflict_response(exc, ["Idempotency-Key"])


def idempotency_conflict_response(
    exc: IdempotencyConflict, fields: Sequence[str]
) -> ProblemResponse:
    """409: the key was used before for a request with another body; `fields` name where
    the key was given (the header, or the batch items)."""
    message = "was already used for a request with a different body"
    where = f"job {exc.job_id}" if exc.job_id else "by another job of this request"
    return problem_response(
        409,
        "idempotency-conflict",
        "Conflict",
        f"the idempotency key {echo(exc.key)} {message} ({where})",
        errors=[ValidationError(field, message) for field in fields],
        extra={"job_id": exc.job_id} if exc.job_id else None,
    )


def _queue_limit(_: Request, exc: Exception) -> Response:
    """409: the job names a queue not yet in use while `CONVEYOR_MAX_QUEUES` queues hold
    jobs; nothing was written. Queue names are checked patterns, safe to echo."""
    assert isinstance(exc, QueueLimitReached)
    return problem_response(
        409,
        "queue-limit",
        "Conflict",
        f"at most {exc.limit} queues may hold jobs (CONVEYOR_MAX_QUEUES); nothing was "
        "written. A queue leaves the count once it holds no job",
        extra={"max_queues": exc.limit, "queues": [echo(q) for q in exc.queues[:10]]},
    )


def _not_replicated(_: Request, exc: Exception) -> Response:
    """503: the jobs are on the primary, but not confirmed by enough replicas (WAIT).
    Not a 201, since a failover now could lose them; they may well exist."""
    assert isinstance(exc, NotReplicated)
    return problem_response(
        503,
        "not-replicated",
        "Service Unavailable",
        f"the job was written, but only {exc.acknowledged} of {exc.required} replicas "
        "confirmed it in time, so a failover could still lose it: it may exist. Read it "
        "back by id, or send the request again with the same Idempotency-Key",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        extra={
            "job_ids": exc.job_ids,
            "replicas_acknowledged": exc.acknowledged,
            "replicas_required": exc.required,
        },
    )


def _unavailable(request: Request, exc: Exception) -> Response:
    log.warning(
        "job store unavailable during %s %r: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
    )
    return unavailable_response()


def _redis_error(request: Request, exc: Exception) -> Response:
    """Other Redis errors: those meaning "not serving now" (a Cluster forming or failing
    over, a server loading, see `conveyor.redis_errors`) are 503, anything else a 500."""
    if store_not_serving(exc):
        return _unavailable(request, exc)
    return internal_error(request, exc)


def internal_error(request: Request, exc: Exception) -> Response:
    log.error(
        "unhandled error during %s %r",
        request.method,
        request.url.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return internal_error_response()


def exception_handlers() -> dict[Any, ExceptionHandler]:
    """The handler table for `Starlette(exception_handlers=...)` (looked up along the MRO)."""
    return {
        Problem: _problem,
        HTTPException: _http,
        PayloadTooLarge: _too_large,
        ValidationError: _validation,
        JobNotFound: _not_found,
        InvalidTransition: _invalid_transition,
        DuplicateJob: _duplicate,
        IdempotencyConflict: _idempotency_conflict,
        StoreUnavailable: _unavailable,
        NotReplicated: _not_replicated,
        QueueLimitReached: _queue_limit,
        TimeoutError: _unavailable,  # the per-request deadline (asyncio.timeout)
        redis_errors.ConnectionError: _unavailable,
        redis_errors.TimeoutError: _unavailable,
        redis_errors.RedisClusterException: _redis_error,  # e.g. no node of the Cluster answers
        redis_errors.RedisError: _redis_error,
        ConnectionError: _unavailable,  # the builtin: a socket error redis-py let through
        Exception: internal_error,
    }
