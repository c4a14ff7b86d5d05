"""Strict parsing of what clients send: the `POST /jobs` and `POST /jobs/batch` bodies, the
`Idempotency-Key` header, the `GET /jobs` query, the correlation id header.

Nothing is coerced: ``"3"`` is not a number, ``true`` is not an integer, an unknown field is
an error rather than ignored (a typo such as ``"delay"`` must not silently run a job now).
Every invalid input is reported at once, each under its field name.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from starlette.datastructures import Headers, QueryParams

from conveyor import codec, jobspec
from conveyor.api.problems import InvalidFields, PayloadsTooLarge
from conveyor.errors import PayloadTooLarge, ValidationError
from conveyor.ids import (
    new_job_id,
    validate_job_id,
    validate_job_limit_key,
    validate_job_type,
    validate_queue,
)
from conveyor.job import BULKY_FIELDS
from conveyor.states import Status
from conveyor.values import ListQuery, NewJob

DEFAULT_QUEUE = jobspec.DEFAULT_QUEUE
DEFAULT_LIMIT = 50  # GET /jobs page size
MAX_LIMIT = 500

JOB_FIELDS = frozenset(
    {
        "type",
        "payload",
        "queue",
        "max_attempts",
        "delay_seconds",
        "run_at",
        "timeout_seconds",
        "expires_at",
        "expire_after_seconds",
        "limit_key",
        "unique_key",
        "unique_for_seconds",
    }
)
QUERY_FIELDS = frozenset(
    {"status", "type", "queue", "limit", "cursor", "created_after", "created_before", "include"}
)
MAX_ID_TIME_MS = 2**48 - 1  # the largest creation time a job id (a ULID) can carry

IDEMPOTENCY_HEADER = "Idempotency-Key"
ITEM_KEY_FIELD = "idempotency_key"  # of a batch item
BATCH_FIELDS = frozenset({"jobs"})

CORRELATION_HEADERS = ("x-correlation-id", "x-request-id")
CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# RFC 3339 date-time (section 5.6): a full date, a time and a mandatory offset. Written in
# the syntax JSON Schema patterns share with Python (the OpenAPI document states it too).
RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))",
    re.ASCII,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DIGITS = re.compile(r"[0-9]{1,6}", re.ASCII)


# -- POST /jobs -----------------------------------------------------------------------------


def parse_new_job(
    body: Mapping[str, Any],
    *,
    max_payload_bytes: int,
    correlation_id: str | None = None,
) -> NewJob:
    """A `NewJob` from a request body; `InvalidFields` (422) naming every bad field, or
    `PayloadTooLarge` (413) when the encoded payload is over `max_payload_bytes`."""
    errors: list[ValidationError] = [
        ValidationError(name, "is not a known field") for name in body if name not in JOB_FIELDS
    ]

    def check(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except ValidationError as exc:
            errors.append(exc)
            return None

    if "type" in body:
        job_type = check(validate_job_type, body["type"], "type")
    else:
        job_type = None
        errors.append(ValidationError("type", "is required"))
    queue = body.get("queue")
    queue = DEFAULT_QUEUE if queue is None else check(validate_queue, queue, "queue")
    max_attempts = check(_max_attempts, body.get("max_attempts"))
    timeout_ms = check(_timeout_ms, body.get("timeout_seconds"))
    limit_key = check(validate_job_limit_key, body.get("limit_key"), "limit_key")
    due = check(_when, body.get("delay_seconds"), body.get("run_at"))
    due_ms, delay_ms = due if due is not None else (None, None)
    expiry = check(_expiry, body.get("expire_after_seconds"), body.get("expires_at"))
    expires_ms, expire_after_ms = expiry if expiry is not None else (None, None)
    unique = check(jobspec.unique, body.get("unique_key"), body.get("unique_for_seconds"))
    unique_key, unique_for_ms = unique if unique is not None else (None, 0)
    too_large: PayloadTooLarge | None = None
    payload = b""
    try:
        payload = codec.encode(body.get("payload"), field="payload", limit=max_payload_bytes)
    except PayloadTooLarge as exc:
        too_large = exc
    except ValidationError as exc:
        errors.append(exc)
    if errors:
        raise InvalidFields(errors)
    if too_large is not None:
        raise too_large
    return NewJob(
        id=new_job_id(),
        type=job_type,
        queue=queue,
        payload=payload,
        max_attempts=max_attempts,
        timeout_ms=timeout_ms,
        correlation_id=correlation_id,
        limit_key=limit_key,
        due_ms=due_ms,
        delay_ms=delay_ms,
        expires_ms=expires_ms,
        expire_after_ms=expire_after_ms,
        unique_key=unique_key,
        unique_for_ms=unique_for_ms,
        payload_value=body.get("payload"),
    )


def _max_attempts(value: object) -> int | None:
    return jobspec.max_attempts(value)


def _timeout_ms(value: object) -> int | None:
    return jobspec.timeout_ms(value)


def _when(delay: object, run_at: object) -> tuple[int | None, int | None]:
    """`(due_ms, delay_ms)` from `run_at` or `delay_seconds` (see `jobspec.when`)."""
    run_at_ms = None if run_at is None else parse_rfc3339(run_at, "run_at")
    return jobspec.when(delay, run_at_ms)


def _expiry(after: object, at: object) -> tuple[int | None, int | None]:
    """`(expires_ms, expire_after_ms)` from `expires_at` or `expire_after_seconds`."""
    at_ms = None if at is None else parse_rfc3339(at, "expires_at")
    return jobspec.expiry(after, at_ms)


def parse_rfc3339(value: object, field: str) -> int:
    """Epoch milliseconds of an RFC 3339 date-time with an explicit offset."""
    message = "must be an RFC 3339 date-time with a timezone, such as 2030-01-01T12:00:00Z"
    if not isinstance(value, str):
        raise ValidationError(field, message)
    match = RFC3339.fullmatch(value)
    if match is None:
        raise ValidationError(field, message)
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    try:
        if zulu:
            tz: timezone = UTC
        else:
            if int(off_m) > 59:
                raise ValueError("offset minutes")
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            tz = timezone(-offset if sign == "-" else offset)
        micros = int((frac or "0").ljust(6, "0")[:6])
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            micros,
            tzinfo=tz,
        )
        return (moment - _EPOCH) // timedelta(milliseconds=1)
    except (ValueError, OverflowError):
        raise ValidationError(field, message) from None


def parse_idempotency_header(headers: Headers) -> str | None:
    """The ``Idempotency-Key`` header: None when absent; `ValidationError` (422) when it is
    malformed or given more than once."""
    values = headers.getlist(IDEMPOTENCY_HEADER)
    if not values:
        return None
    if len(values) > 1:
        raise ValidationError(IDEMPOTENCY_HEADER, "may be given only once")
    return jobspec.idempotency_key(values[0], IDEMPOTENCY_HEADER)


def with_idempotency_key(job: NewJob, key: str | None, body: Mapping[str, Any]) -> NewJob:
    """`job` carrying `key` and the fingerprint of the (validated) request `body`."""
    if key is None:
        return job
    fields: dict[str, object] = {name: body.get(name) for name in JOB_FIELDS}
    if fields["run_at"] is not None:  # by its instant, however the offset was written
        fields["run_at"] = parse_rfc3339(fields["run_at"], "run_at")
    if fields["expires_at"] is not None:
        fields["expires_at"] = parse_rfc3339(fields["expires_at"], "expires_at")
    return replace(job, idempotency_key=key, fingerprint=jobspec.fingerprint(fields))


# -- POST /jobs/batch -----------------------------------------------------------------------


def parse_batch(
    body: Mapping[str, Any],
    *,
    max_jobs: int,
    max_payload_bytes: int,
    correlation_id: str | None = None,
) -> list[NewJob]:
    """The jobs of a batch body ``{"jobs": [item, ...]}``, in order. An item is a
    `POST /jobs` body plus an optional ``idempotency_key``.

    All or nothing: `InvalidFields` (422) names every bad field of every item as
    ``jobs/<i>/<field>``; otherwise `PayloadsTooLarge` (413) names every payload over
    `max_payload_bytes` as ``jobs/<i>/payload``.
    """
    errors: list[ValidationError] = [
        ValidationError(name, "is not a known field") for name in body if name not in BATCH_FIELDS
    ]
    items = body.get("jobs")
    if items is None:
        errors.append(ValidationError("jobs", "is required"))
    elif not isinstance(items, list):
        errors.append(ValidationError("jobs", "must be an array of jobs"))
    elif not 1 <= len(items) <= max_jobs:
        errors.append(ValidationError("jobs", f"must hold between 1 and {max_jobs} jobs"))
    if errors:
        raise InvalidFields(errors)
    assert isinstance(items, list)
    jobs: list[NewJob] = []
    too_large: list[ValidationError] = []
    for index, item in enumerate(items):
        try:
            jobs.append(
                _batch_item(
                    index,
                    item,
                    max_payload_bytes=max_payload_bytes,
                    correlation_id=correlation_id,
                )
            )
        except InvalidFields as exc:
            errors += exc.errors
        except PayloadTooLarge as exc:
            too_large.append(exc)
    if errors:
        raise InvalidFields(errors)
    if too_large:
        raise PayloadsTooLarge(too_large)
    return jobs


def _batch_item(
    index: int,
    item: object,
    *,
    max_payload_bytes: int,
    correlation_id: str | None,
) -> NewJob:
    """Item `index` of a batch; its errors are named ``jobs/<index>/<field>``."""
    prefix = f"jobs/{index}/"
    if not isinstance(item, dict):
        raise InvalidFields([ValidationError(f"jobs/{index}", "must be a JSON object")])
    fields = {name: value for name, value in item.items() if name != ITEM_KEY_FIELD}
    errors: list[ValidationError] = []
    try:
        key = jobspec.idempotency_key(item.get(ITEM_KEY_FIELD), prefix + ITEM_KEY_FIELD)
    except ValidationError as exc:
        errors.append(exc)
        key = None
    try:
        job = parse_new_job(
            fields,
            max_payload_bytes=max_payload_bytes,
            correlation_id=correlation_id,
        )
    except InvalidFields as exc:
        errors[:0] = [ValidationError(prefix + e.field, e.message) for e in exc.errors]
    except PayloadTooLarge as exc:
        if not errors:
            raise PayloadTooLarge(prefix + exc.field, exc.message) from None
    if errors:
        raise InvalidFields(errors)
    return with_idempotency_key(job, key, fields)


# -- GET /jobs ------------------------------------------------------------------------------


def parse_list_query(params: QueryParams) -> ListQuery:
    """A `ListQuery` from the query string; `InvalidFields` (422) naming every bad parameter.

    ``status`` may repeat and each value may list several statuses separated by commas;
    every other parameter may appear once. ``created_after`` and ``created_before`` are
    RFC 3339 date-times with an offset.
    """
    errors = _unknown_or_repeated(params)
    statuses = _statuses(params.getlist("status"), errors)

    def single(name: str) -> str | None:
        values = params.getlist(name)
        return values[0] if len(values) == 1 else None

    def check(fn: Any, value: str | None, name: str) -> Any:
        if value is None:
            return None
        try:
            return fn(value, name)
        except ValidationError as exc:
            errors.append(exc)
            return None

    job_type = check(validate_job_type, single("type"), "type")
    queue = check(validate_queue, single("queue"), "queue")
    cursor = check(validate_job_id, single("cursor"), "cursor")
    limit = check(_limit, single("limit"), "limit")
    created_after = check(_created_ms, single("created_after"), "created_after")
    created_before = check(_created_ms, single("created_before"), "created_before")
    include = check(parse_include, single("include"), "include")
    if errors:
        raise InvalidFields(_dedupe(errors))
    return ListQuery(
        include=frozenset() if include is None else include,
        statuses=statuses,
        queue=queue,
        type=job_type,
        limit=DEFAULT_LIMIT if limit is None else limit,
        cursor=cursor,
        created_after_ms=created_after,
        created_before_ms=created_before,
    )


def _created_ms(value: str, field: str) -> int:
    """A creation-time bound, clamped to the times a job id can carry (1970..10889)."""
    return min(max(parse_rfc3339(value, field), 0), MAX_ID_TIME_MS)


def parse_include(value: str, name: str = "include") -> frozenset[str]:
    """``include``: a comma-separated subset of the bulky fields (payload, result) the
    items of a listing should carry; empty means none."""
    if value == "":
        return frozenset()
    parts = value.split(",")
    if not set(parts) <= BULKY_FIELDS:
        detail = f"must list {' or '.join(sorted(BULKY_FIELDS))}, separated by commas"
        raise ValidationError(name, detail)
    return frozenset(parts)


def _unknown_or_repeated(params: QueryParams) -> list[ValidationError]:
    errors = []
    for name in dict.fromkeys(params.keys()):
        if name not in QUERY_FIELDS:
            errors.append(ValidationError(name, "is not a known query parameter"))
        elif name != "status" and len(params.getlist(name)) > 1:
            errors.append(ValidationError(name, "may be given only once"))
    return errors


def _statuses(values: Sequence[str], errors: list[ValidationError]) -> tuple[Status, ...]:
    statuses: list[Status] = []
    for raw in values:
        for part in raw.split(","):
            try:
                status = Status(part.strip())
            except ValueError:
                allowed = ", ".join(s.value for s in Status)
                errors.append(ValidationError("status", f"must be one of {allowed}"))
                continue
            if status not in statuses:
                statuses.append(status)
    return tuple(statuses)


def _limit(value: str, field: str) -> int:
    if not _DIGITS.fullmatch(value) or not 1 <= int(value) <= MAX_LIMIT:
        raise ValidationError(field, f"must be an integer between 1 and {MAX_LIMIT}")
    return int(value)


def _dedupe(errors: Sequence[ValidationError]) -> list[ValidationError]:
    seen: set[tuple[str, str]] = set()
    out = []
    for e in errors:
        if (e.field, e.message) not in seen:
            seen.add((e.field, e.message))
            out.append(e)
    return out


# -- correlation id -------------------------------------------------------------------------


def correlation_id(headers: Mapping[str, str]) -> str:
    """The client's correlation id when it is well formed, else a new one.

    ``X-Correlation-ID`` is preferred over ``X-Request-ID``; a value that does not match
    ``[A-Za-z0-9._:-]{1,128}`` is ignored rather than refused, since it only serves tracing.
    """
    for name in CORRELATION_HEADERS:
        value = headers.get(name)
        if value is not None and CORRELATION_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex
