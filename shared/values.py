"""The values the clients accept and return, and the stores read and write.

They live outside `conveyor.store` so that the HTTP client, which never talks to Redis,
can use them without loading the Redis store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from conveyor import codec
from conveyor.ids import ms_to_rfc3339
from conveyor.job import BULKY_FIELDS, Job
from conveyor.states import Status

NOT_KEPT: Any = object()  # NewJob.payload_value when the caller did not keep the value


@dataclass(frozen=True, slots=True)
class NewJob:
    """A validated job to create. `payload` is already msgpack-encoded."""

    id: str
    type: str
    queue: str
    payload: bytes
    max_attempts: int | None = None  # None: the handler's, else the worker's default
    timeout_ms: int | None = None  # None: the handler's, else the worker's default
    correlation_id: str | None = None
    limit_key: str | None = None  # counts under this key's limits too (ADR 0017)
    due_ms: int | None = None  # absolute epoch ms (a `run_at`); None or past = now
    # A delay (`delay_seconds`) in ms, counted from the enqueue script's Redis TIME, so a
    # producer's skewed clock cannot move the job; exclusive with `due_ms`.
    delay_ms: int | None = None
    idempotency_key: str | None = None  # see ProducerStore.create
    # It never starts after `expires_ms` (epoch ms), or after `expire_after_ms` counted from
    # the enqueue script's Redis TIME (exclusive with `expires_ms`); None: no expiry.
    expires_ms: int | None = None
    expire_after_ms: int | None = None
    fingerprint: str | None = None  # of the request that asked for the job (jobspec)
    # While a job of the queue holding this key is not finished (and `unique_for_ms` after
    # it finished), a create with the key answers that job instead (ProducerStore.create).
    unique_key: str | None = None
    unique_for_ms: int = 0
    schedule: str | None = None  # the periodic schedule that fired the job (worker/periodic.py)
    # The JSON value `payload` encodes, when the caller has it: the created Job shows it
    # instead of decoding `payload` again (a large payload costs milliseconds to decode).
    payload_value: codec.JsonValue = field(default=NOT_KEPT, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Created:
    """One job of a create call: `created` is False for an idempotent repeat, and `job` is
    then the job the key was first used for, as stored now."""

    job: Job
    created: bool


class CancelOutcome(StrEnum):
    CANCELED = "canceled"  # it was not running: canceled at once
    REQUESTED = "requested"  # it is running: its worker was asked to stop


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Job]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ListQuery:
    """What `list_jobs` returns. `include`: which of the bulky fields (BULKY_FIELDS) the
    items carry (the others are read from Redis not at all); `max_bytes`: the most bytes
    the page's items may take (estimated from their stored sizes; None: no cap). A page
    cut by it ends early with a cursor to the rest, and holds at least one job."""

    statuses: tuple[Status, ...] = ()
    queue: str | None = None
    type: str | None = None
    limit: int = 50
    cursor: str | None = None  # the id of the last job of the previous page
    created_after_ms: int | None = None
    created_before_ms: int | None = None
    include: frozenset[str] = BULKY_FIELDS
    max_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class QueueStats:
    name: str
    waiting: int  # on the stream, not yet delivered to a worker (XLEN - pending_in_group)
    pending_in_group: int  # delivered, in the group's PEL (claimed or about to be)
    running: int
    scheduled: int
    retrying: int
    failed: int
    completed: int
    canceled: int
    consumers: int  # consumers of the group, idle ones included
    oldest_waiting_age_seconds: float | None  # of the oldest undelivered entry; None: none
    expired: int = 0  # ended expired: their expires_at passed before they started
    paused: bool = False  # no job of the queue starts while it is paused (store/pause.py)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A live worker as its last heartbeat describes it. Times are epoch milliseconds; a
    field the heartbeat lacks or garbled is None."""

    id: str
    host: str | None = None
    pid: int | None = None
    queues: tuple[str, ...] = ()
    concurrency: int | None = None
    in_flight: int | None = None
    processed: int | None = None
    failed: int | None = None
    started_at: int | None = None
    last_seen: int | None = None

    @classmethod
    def from_heartbeat(cls, raw: Mapping[str, Any]) -> WorkerInfo:
        """From a worker's heartbeat hash (every value a string) and its `id`."""
        queues = raw.get("queues")
        host = raw.get("host")
        return cls(
            id=str(raw["id"]),
            host=host if isinstance(host, str) else None,
            pid=_int(raw.get("pid")),
            queues=tuple(q for q in queues.split(",") if q) if isinstance(queues, str) else (),
            concurrency=_int(raw.get("concurrency")),
            in_flight=_int(raw.get("in_flight")),
            processed=_int(raw.get("processed")),
            failed=_int(raw.get("failed")),
            started_at=_ms(raw.get("started_at")),
            last_seen=_ms(raw.get("last_seen")),
        )

    def to_json(self) -> dict[str, Any]:
        """The API's JSON of a worker (times as RFC 3339)."""
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "queues": list(self.queues),
            "concurrency": self.concurrency,
            "in_flight": self.in_flight,
            "processed": self.processed,
            "failed": self.failed,
            "started_at": ms_to_rfc3339(self.started_at),
            "last_seen": ms_to_rfc3339(self.last_seen),
        }


@dataclass(frozen=True, slots=True)
class BulkResult:
    done: int  # jobs replayed or purged by this call
    remaining: int  # jobs still in the status afterwards

    def to_json(self, verb: str) -> dict[str, int]:
        return {verb: self.done, "remaining": self.remaining}


def _int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _ms(value: object) -> int | None:
    """Epoch ms of a heartbeat time: an integer, or a float written by some writer."""
    ms = _int(value)
    if ms is None and isinstance(value, str):
        try:
            ms = int(float(value))
        except ValueError:
            return None
    return None if ms is None or ms < 0 else ms
