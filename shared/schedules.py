"""Periodic schedules: what one is, how it is validated, when it fires, which job id a fire
time gets.

A schedule fires either on a cron expression (5 fields, or 6 with leading seconds, read
in its `timezone`) or every `every_seconds` (fire times are the multiples of the interval
since the Unix epoch, so every replica computes the same ones without a stored anchor).
Cron expressions are parsed and evaluated by cronsim.

The job of a fire time gets an id derived from the schedule's name and that time
(`fire_job_id`): a ULID whose timestamp is the fire time and whose random part is a hash
of both. A second firing of the same time — another scheduler replica, or a restart after a
crash between creating the job and recording the fire — finds that id taken, and the
enqueue script then creates nothing: each fire time yields at most one job, with no lock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from ulid import ULID

from conveyor import codec, jobspec
from conveyor.errors import ConveyorError, PayloadTooLarge, ValidationError
from conveyor.ids import validate_job_type, validate_name, validate_queue

MAX_EVERY_SECONDS = 366 * 86_400
MAX_CRON_LENGTH = 200
_TIMEZONE = re.compile(r"[A-Za-z0-9_+-]{1,32}(/[A-Za-z0-9_+-]{1,32}){0,2}", re.ASCII)
FIELDS = frozenset(
    {
        "type",
        "payload",
        "queue",
        "cron",
        "timezone",
        "every_seconds",
        "max_attempts",
        "timeout_seconds",
        "overlap",
        "catch_up",
    }
)


class Overlap(StrEnum):
    ALLOW = "allow"  # fire whatever the previous job is doing
    SKIP = "skip"  # no job for a fire time while the previous one is not finished


class CatchUp(StrEnum):
    ONE = "one"  # fire times missed while no scheduler ran: one job for all of them
    NONE = "none"  # no job for them


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A validated schedule definition. `payload` is already msgpack-encoded."""

    name: str
    type: str
    queue: str
    payload: bytes
    cron: str | None = None
    timezone: str = "UTC"
    every_seconds: int | None = None
    max_attempts: int | None = None
    timeout_ms: int | None = None
    overlap: Overlap = Overlap.ALLOW
    catch_up: CatchUp = CatchUp.ONE
    payload_value: codec.JsonValue = field(default=None, compare=False, repr=False)

    @property
    def timing(self) -> str:
        """When it fires, as one canonical string: a PUT that keeps it keeps next_run_at."""
        if self.every_seconds is not None:
            return f"every {self.every_seconds}"
        return f"cron {self.cron} {self.timezone}"

    def next_after(self, ms: int) -> int:
        """The first fire time (epoch ms) strictly after `ms`."""
        if self.every_seconds is not None:
            step = self.every_seconds * 1000
            return (ms // step + 1) * step
        assert self.cron is not None
        start = datetime.fromtimestamp(ms / 1000, tz=ZoneInfo(self.timezone))
        return _ms(next(CronSim(self.cron, start)))

    def latest_before(self, ms: int) -> int:
        """The last fire time (epoch ms) strictly before `ms`."""
        if self.every_seconds is not None:
            step = self.every_seconds * 1000
            return ((ms - 1) // step) * step
        assert self.cron is not None
        # cronsim works in whole seconds: start from the second that holds `ms`.
        start = datetime.fromtimestamp(-(-ms // 1000), tz=ZoneInfo(self.timezone))
        found = _ms(next(CronSim(self.cron, start, reverse=True)))
        return found if found < ms else _ms(next(CronSim(self.cron, start - _SECOND, True)))


_SECOND = timedelta(seconds=1)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def fire_job_id(name: str, fire_ms: int) -> str:
    """The id of the job a schedule creates for one fire time (see the module docstring)."""
    digest = hashlib.sha256(f"{name}\n{fire_ms}".encode()).digest()[:10]
    return str(ULID.from_bytes(fire_ms.to_bytes(6, "big") + digest))


def validate_schedule_name(value: object, field: str = "name") -> str:
    return validate_name(value, field)


def parse_schedule(
    name: str, body: Mapping[str, Any], *, max_payload_bytes: int
) -> tuple[ScheduleSpec | None, list[ValidationError], PayloadTooLarge | None]:
    """A `ScheduleSpec` from a definition (the `PUT /schedules/{name}` body, or the
    client's arguments): the spec, or None with every invalid field (and a payload over
    `max_payload_bytes`, reported apart: the API answers it 413)."""
    errors: list[ValidationError] = [
        ValidationError(key, "is not a known field") for key in body if key not in FIELDS
    ]

    def check(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except ValidationError as exc:
            errors.append(exc)
            return None

    check(validate_schedule_name, name, "name")
    job_type = None
    if "type" in body:
        job_type = check(validate_job_type, body["type"], "type")
    else:
        errors.append(ValidationError("type", "is required"))
    queue = body.get("queue")
    queue = jobspec.DEFAULT_QUEUE if queue is None else check(validate_queue, queue, "queue")
    max_attempts = check(jobspec.max_attempts, body.get("max_attempts"))
    timeout_ms = check(jobspec.timeout_ms, body.get("timeout_seconds"))
    overlap = check(_choice, Overlap, body.get("overlap"), "overlap", Overlap.ALLOW)
    catch_up = check(_choice, CatchUp, body.get("catch_up"), "catch_up", CatchUp.ONE)
    cron, every = body.get("cron"), body.get("every_seconds")
    tz_raw = body.get("timezone")
    timezone = "UTC"
    if (cron is None) == (every is None):
        errors.append(ValidationError("cron", "give either cron or every_seconds, not both"))
    elif every is not None:
        check(_every, every)
        if tz_raw is not None:
            errors.append(ValidationError("timezone", "applies to cron only"))
    else:
        timezone = check(_timezone, "UTC" if tz_raw is None else tz_raw) or "UTC"
        check(_cron, cron, timezone)
    too_large: PayloadTooLarge | None = None
    payload = b""
    try:
        payload = codec.encode(body.get("payload"), field="payload", limit=max_payload_bytes)
    except PayloadTooLarge as exc:
        too_large = exc
    except ValidationError as exc:
        errors.append(exc)
    if errors or too_large is not None:
        return None, errors, too_large
    assert isinstance(job_type, str)
    spec = ScheduleSpec(
        name=name,
        type=job_type,
        queue=queue,
        payload=payload,
        cron=cron,
        timezone=timezone,
        every_seconds=every,
        max_attempts=max_attempts,
        timeout_ms=timeout_ms,
        overlap=overlap,
        catch_up=catch_up,
        payload_value=body.get("payload"),
    )
    return spec, [], None


def _choice(kind: Any, value: object, field: str, default: Any) -> Any:
    if value is None:
        return default
    allowed = [m.value for m in kind]
    if not isinstance(value, str) or value not in allowed:
        raise ValidationError(field, f"must be one of {', '.join(allowed)}")
    return kind(value)


def _every(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_EVERY_SECONDS:
        raise ValidationError(
            "every_seconds", f"must be an integer between 1 and {MAX_EVERY_SECONDS}"
        )
    return value


def _timezone(value: object) -> str:
    message = "must be an IANA time zone name, such as UTC or Europe/Paris"
    if not isinstance(value, str) or not _TIMEZONE.fullmatch(value):
        raise ValidationError("timezone", message)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError("timezone", message) from None
    return value


def _cron(value: object, timezone: str) -> str:
    message = "must be a cron expression of 5 fields, or 6 with leading seconds"
    if not isinstance(value, str) or len(value) > MAX_CRON_LENGTH:
        raise ValidationError("cron", message)
    if len(value.split()) not in (5, 6):
        raise ValidationError("cron", message)
    try:
        next(CronSim(value, datetime.now(UTC).astimezone(ZoneInfo(timezone))))
    except (CronSimError, StopIteration, ValueError, OverflowError) as exc:
        raise ValidationError("cron", f"{message} ({exc})" if str(exc) else message) from None
    return value


class ScheduleNotFound(ConveyorError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule is named {name}")
        self.name = name


class ScheduleLimitReached(ConveyorError):
    """A new schedule while `limit` exist (`CONVEYOR_MAX_SCHEDULES`): nothing written."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} schedules may exist (CONVEYOR_MAX_SCHEDULES)")
        self.limit = limit
