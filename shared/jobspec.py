"""The rules for what a producer may ask of a new job, shared by every way in.

The HTTP API (`api/dto.py`), the Python client and the CLI all check fields with these
functions, so a job that one of them accepts, the others accept too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Unpack, cast

from conveyor import codec
from conveyor.client_api import EnqueueOptions, Item, JobOptions, ListFilter
from conveyor.errors import ValidationError
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

DEFAULT_QUEUE = "default"
MAX_ATTEMPTS = 1000
MAX_DELAY_SECONDS = 365 * 24 * 3600
MAX_TIMEOUT_SECONDS = 24 * 3600
DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 500
MAX_UNIQUE_FOR_SECONDS = 365 * 24 * 3600
# The keyword arguments the clients take, as declared in conveyor.client_api.
JOB_OPTIONS = JobOptions.__optional_keys__
ENQUEUE_OPTIONS = EnqueueOptions.__optional_keys__
LIST_FILTERS = ListFilter.__optional_keys__
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{1,255}")
# The request fields an idempotency fingerprint covers (absent ones count as null).
FINGERPRINT_FIELDS = (
    "type",
    "payload",
    "queue",
    "max_attempts",
    "delay_seconds",
    "run_at",
    "timeout_seconds",
)
# Fingerprinted only when given, so that the fingerprints of requests without them stay
# what they were before these fields existed (keys already stored keep matching).
FINGERPRINT_WHEN_GIVEN = ("expire_after_seconds", "expires_at")
# Counted only when given, so that the fingerprints of requests without them stay as they
# were before unique jobs existed (idempotency keys stored then still match).
OPTIONAL_FINGERPRINT_FIELDS = ("unique_key", "unique_for_seconds")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def max_attempts(value: object, field: str = "max_attempts") -> int | None:
    """None (not given) or an integer 1..MAX_ATTEMPTS; booleans and strings are refused."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 3.0 is an integer in JSON (and JSON Schema)
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


def when(
    delay: object,
    run_at_ms: int | None,
    *,
    delay_field: str = "delay_seconds",
    run_at_field: str = "run_at",
) -> tuple[int | None, int | None]:
    """`(due_ms, delay_ms)` of `NewJob`: an absolute due time (epoch ms) from `run_at`, or
    a delay in ms from `delay_seconds`, which the enqueue script adds to Redis's clock (not
    this process's: a producer with a skewed clock still delays by exactly that much).
    `(None, None)` means now; a `run_at` in the past means now too."""
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
        return None, (delay_ms if delay_ms > 0 else None)
    return run_at_ms, None


def expiry(
    after: object,
    at_ms: int | None,
    *,
    after_field: str = "expire_after_seconds",
    at_field: str = "expires_at",
) -> tuple[int | None, int | None]:
    """`(expires_ms, expire_after_ms)` of `NewJob`: an absolute expiry (epoch ms) from
    `expires_at`, or seconds from `expire_after_seconds` that the enqueue script adds to
    Redis's clock. `(None, None)`: the job never expires. A time in the past is kept: the
    job ends expired instead of starting."""
    if after is not None and at_ms is not None:
        raise ValidationError(at_field, "cannot be combined with expire_after_seconds")
    if after is None:
        # Any time before 1970 has passed as surely as 1970 has: stored (and shown) as the
        # epoch, since a job's times are epoch milliseconds.
        return None if at_ms is None else max(at_ms, 0), None
    if not _is_number(after):
        raise ValidationError(after_field, "must be a number")
    assert isinstance(after, (int, float))
    if not 0 < after <= MAX_DELAY_SECONDS:
        raise ValidationError(
            after_field, f"must be greater than 0 and at most {MAX_DELAY_SECONDS} (365 days)"
        )
    return None, max(1, round(after * 1000))


def datetime_ms(value: datetime, field: str = "run_at") -> int:
    if value.tzinfo is None:
        raise ValidationError(field, "must include a timezone (for example UTC)")
    return int(value.timestamp() * 1000)


def idempotency_key(value: object, field: str = "idempotency_key") -> str | None:
    """None (not given) or a key matching ^[A-Za-z0-9._:-]{1,255}$."""
    if value is None:
        return None
    if not isinstance(value, str) or not IDEMPOTENCY_KEY.fullmatch(value):
        raise ValidationError(field, "must be 1 to 255 characters of A-Z a-z 0-9 . _ : -")
    return value


def unique(
    key: object,
    for_seconds: object,
    *,
    key_field: str = "unique_key",
    for_field: str = "unique_for_seconds",
) -> tuple[str | None, int]:
    """`(unique_key, unique_for_ms)` of `NewJob`: the key matches ^[A-Za-z0-9._:-]{1,255}$
    (None: not given); `unique_for_seconds` is 0..MAX_UNIQUE_FOR_SECONDS and needs a key."""
    name = idempotency_key(key, key_field)
    if for_seconds is None:
        return name, 0
    if not _is_number(for_seconds):
        raise ValidationError(for_field, "must be a number")
    assert isinstance(for_seconds, (int, float))
    if not 0 <= for_seconds <= MAX_UNIQUE_FOR_SECONDS:
        raise ValidationError(for_field, f"must be between 0 and {MAX_UNIQUE_FOR_SECONDS}")
    if name is None:
        raise ValidationError(for_field, "needs a unique_key")
    return name, round(for_seconds * 1000)


WORKER_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
MAX_CONCURRENCY = 1000  # Settings.max_concurrency's own upper bound


def validate_worker_id(value: object, field: str = "worker_id") -> str:
    """A worker id as workers make them (``<host>-<pid>-<hex>``): ^[A-Za-z0-9._:-]{1,128}$."""
    if not isinstance(value, str) or not WORKER_ID.fullmatch(value):
        raise ValidationError(field, "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -")
    return value


def valid_concurrency(value: object, field: str = "concurrency") -> int | None:
    """None (clear) or an integer 1..MAX_CONCURRENCY (a worker also caps it at its own
    max_concurrency; the API at its setting)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise ValidationError(field, f"must be an integer from 1 to {MAX_CONCURRENCY}, or null")
    return value


def fingerprint(fields: Mapping[str, object]) -> str:
    """The fingerprint of a job request, compared when an idempotency key is used again:
    sha256 (hex) of the canonical JSON (sorted keys, no spaces, UTF-8 kept) of the fields
    in FINGERPRINT_FIELDS; other entries of `fields` are ignored.

    Values are normalised so that equal requests agree however they were spelled: an absent
    field and None are the same, an absent queue is the default queue, a whole-number float
    option equals the integer (``timeout_seconds`` 5.0 and 5), and a datetime `run_at`
    counts as its epoch milliseconds (pass the parsed value, not the request's text). The
    payload is taken as given: 1 and 1.0 are different payloads.
    """
    canon: dict[str, object] = {}
    for name in FINGERPRINT_FIELDS:
        value = fields.get(name)
        if name == "queue" and value is None:
            value = DEFAULT_QUEUE
        elif isinstance(value, datetime):
            value = datetime_ms(value, name)
        elif isinstance(value, float) and name != "payload" and value.is_integer():
            value = int(value)
        canon[name] = value
    for name in FINGERPRINT_WHEN_GIVEN:
        value = fields.get(name)
        if isinstance(value, datetime):
            value = datetime_ms(value, name)
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        if value is not None:
            canon[name] = value
    for name in OPTIONAL_FINGERPRINT_FIELDS:
        value = fields.get(name)
        if value is not None:
            canon[name] = int(value) if isinstance(value, float) and value.is_integer() else value
    text = json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def known_options(
    options: Mapping[str, object],
    allowed: frozenset[str],
    field_prefix: str = "",
    of: str = "enqueue",
) -> None:
    """`ValidationError` naming the first option of `options` not in `allowed` (keyword
    arguments are checked here, not by the signature: they arrive as one mapping)."""
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValidationError(f"{field_prefix}{unknown[0]}", f"is not an option of {of}")


def build(
    job_type: str,
    payload: codec.JsonValue = None,
    *,
    max_payload_bytes: int | None = None,
    field_prefix: str = "",
    **options: Unpack[EnqueueOptions],
) -> NewJob:
    """A validated NewJob for the Python client; `ValidationError` names the first bad
    field (prefixed with `field_prefix`, e.g. ``jobs/3/``), an unknown option too. With an
    `idempotency_key`, the job carries the fingerprint of the request (see `fingerprint`)."""
    p = field_prefix
    known_options(options, ENQUEUE_OPTIONS, p)
    given_queue = options.get("queue")  # None, as over HTTP, is the default queue
    queue = DEFAULT_QUEUE if given_queue is None else given_queue
    run_at = options.get("run_at")
    run_at_ms = None if run_at is None else datetime_ms(run_at, f"{p}run_at")
    due_ms, delay_ms = when(
        options.get("delay_seconds"),
        run_at_ms,
        delay_field=f"{p}delay_seconds",
        run_at_field=f"{p}run_at",
    )
    expires = options.get("expires_at")
    expires_ms, expire_after_ms = expiry(
        options.get("expire_after_seconds"),
        None if expires is None else datetime_ms(expires, f"{p}expires_at"),
        after_field=f"{p}expire_after_seconds",
        at_field=f"{p}expires_at",
    )
    job = NewJob(
        id=new_job_id(),
        type=validate_job_type(job_type, f"{p}type"),
        queue=validate_queue(queue, f"{p}queue"),
        payload=codec.encode(payload, field=f"{p}payload", limit=max_payload_bytes),
        max_attempts=max_attempts(options.get("max_attempts"), f"{p}max_attempts"),
        timeout_ms=timeout_ms(options.get("timeout_seconds"), f"{p}timeout_seconds"),
        correlation_id=options.get("correlation_id"),
        limit_key=validate_job_limit_key(options.get("limit_key"), f"{p}limit_key"),
        due_ms=due_ms,
        delay_ms=delay_ms,
        expires_ms=expires_ms,
        expire_after_ms=expire_after_ms,
    )
    unique_key, unique_for_ms = unique(
        options.get("unique_key"),
        options.get("unique_for_seconds"),
        key_field=f"{p}unique_key",
        for_field=f"{p}unique_for_seconds",
    )
    if unique_key is not None:
        job = replace(job, unique_key=unique_key, unique_for_ms=unique_for_ms)
    key = idempotency_key(options.get("idempotency_key"), f"{p}idempotency_key")
    if key is None:
        return job
    request = {**options, "type": job_type, "payload": payload, "queue": queue}
    return replace(job, idempotency_key=key, fingerprint=fingerprint(request))


def batch_options(item: Item, index: int) -> tuple[str, Any, JobOptions]:
    """An item of `enqueue_many` as (type, payload, options); `ValidationError` for an
    option a batch item may not carry (its correlation id is the batch's)."""
    job_type, payload = item[0], item[1]
    options: Mapping[str, Any] = item[2] if len(item) > 2 else {}
    known_options(options, JOB_OPTIONS, f"jobs/{index}/", "a batch item")
    return job_type, payload, cast(JobOptions, options)  # its keys were checked just now


def list_query(filters: ListFilter, *, default_limit: int = DEFAULT_LIST_LIMIT) -> ListQuery:
    """The validated `ListQuery` of `list`'s filters; `ValidationError` names the field."""
    known_options(filters, LIST_FILTERS, of="list")
    status = filters.get("status")
    names = (status,) if isinstance(status, str) else tuple(status or ())
    known = {s.value for s in Status}
    for name in names:
        if name not in known:
            raise ValidationError("status", f"must be one of {', '.join(sorted(known))}")
    limit = filters.get("limit", default_limit)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
        raise ValidationError("limit", f"must be an integer between 1 and {MAX_LIST_LIMIT}")
    queue, cursor = filters.get("queue"), filters.get("cursor")
    after, before = filters.get("created_after"), filters.get("created_before")
    include = filters.get("include", tuple(sorted(BULKY_FIELDS)))
    if isinstance(include, str) or not all(isinstance(n, str) for n in include):
        raise ValidationError("include", "must be a sequence of field names")
    if not set(include) <= BULKY_FIELDS:
        raise ValidationError("include", f"must list only {', '.join(sorted(BULKY_FIELDS))}")
    return ListQuery(
        include=frozenset(include),
        statuses=tuple(Status(name) for name in names),
        queue=None if queue is None else validate_queue(queue),
        type=filters.get("type"),
        limit=limit,
        cursor=None if cursor is None else validate_job_id(cursor, "cursor"),
        created_after_ms=None if after is None else datetime_ms(after, "created_after"),
        created_before_ms=None if before is None else datetime_ms(before, "created_before"),
    )
