"""Value types for the names that end up inside Redis keys: job ids, job types, queue names.

Names become part of keys such as ``conveyor:{<queue>}:job:<id>``; a ``{``, ``}`` or ``:``
in them would move a key to another Cluster slot or make the layout ambiguous, so every name
is validated against a strict pattern before it reaches the store.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from functools import lru_cache

from ulid import ULID

from conveyor.errors import ValidationError

NAME_PATTERN = r"[A-Za-z0-9._-]{1,64}"
_NAME = re.compile(NAME_PATTERN)
# Crockford base32, 26 characters, first character at most 7 (128-bit value).
JOB_ID_PATTERN = r"[0-7][0-9A-HJKMNP-TV-Z]{25}"
_JOB_ID = re.compile(JOB_ID_PATTERN)


def new_job_id() -> str:
    """A ULID: 48-bit millisecond timestamp + 80 random bits, sortable as text."""
    return str(ULID())


def job_id_time_ms(job_id: str) -> int:
    """The creation time (epoch ms) encoded in a job id."""
    return int(ULID.from_str(job_id).milliseconds)


def job_id_bound(ms: int, *, upper: bool) -> str:
    """The smallest (or largest) job id whose timestamp is `ms`: a lexical range bound."""
    return str(ULID.from_timestamp(ms))[:10] + ("Z" * 16 if upper else "0" * 16)


def validate_job_id(value: object, field: str = "id") -> str:
    if not isinstance(value, str) or not _JOB_ID.fullmatch(value):
        raise ValidationError(field, "must be a 26-character ULID")
    return value


def validate_name(value: object, field: str) -> str:
    """Queue names and job types: 1-64 characters of ``A-Z a-z 0-9 . _ -``."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValidationError(field, f"must match {NAME_PATTERN}")
    return value


def validate_job_limit_key(value: object, field: str = "limit_key") -> str | None:
    """A job's own concurrency/rate limit key (ADR 0017), e.g. a tenant id: a name, other
    than ``queue`` (the key of the whole queue, which every job counts under); None: none."""
    if value is None:
        return None
    validate_name(value, field)
    if value == "queue":
        raise ValidationError(field, "'queue' is the key of the whole queue; choose another")
    return str(value)


def validate_queue(value: object, field: str = "queue") -> str:
    return validate_name(value, field)


def validate_job_type(value: object, field: str = "type") -> str:
    return validate_name(value, field)


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def ms_to_rfc3339(ms: int | None) -> str | None:
    """Epoch milliseconds as RFC 3339 UTC with millisecond precision (``...T12:00:00.123Z``)."""
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)
    if 0 <= seconds < _YEAR_10000:
        return f"{_second_to_rfc3339(seconds)}.{millis:03d}Z"
    return ms_to_datetime(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis:03d}Z"


@lru_cache(maxsize=4096)
def _second_to_rfc3339(seconds: int) -> str:
    """Formatting is the costly part, and the times of one answer mostly share seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


_YEAR_10000 = 253402300800  # the first second RFC 3339's four-digit year cannot show
