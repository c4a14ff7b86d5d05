"""The Job entity: a frozen snapshot of one job hash, plus its attempt history.

The hash in Redis keeps plain, redis-cli-readable fields (times in epoch milliseconds);
only `payload` and `result` are msgpack. `Job.from_hash` is the one place that reads that
layout; the Lua scripts are the only writers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from conveyor import codec
from conveyor.ids import ms_to_rfc3339
from conveyor.states import Status

HISTORY_LIMIT = 20  # attempts kept per job (also enforced in the Lua library)
# The fields that may each take up to max_payload_bytes: a listing reads them only when
# asked (`ListQuery.include`), so a page of large jobs costs its ids and states alone.
BULKY_FIELDS = frozenset({"payload", "result"})
# Every other field `Job.from_hash` reads, in the order a listing asks for them (HMGET).
LIGHT_FIELDS = (
    "id",
    "type",
    "queue",
    "status",
    "attempts",
    "max_attempts",
    "effective_max_attempts",
    "timeout_ms",
    "last_error",
    "correlation_id",
    "limit_key",
    "schedule",
    "created_at",
    "updated_at",
    "run_at",
    "next_run_at",
    "expires_at",
    "started_at",
    "finished_at",
    "worker",
    "cancel_requested",
    "deliveries",
    "history",
)


class Outcome:
    """How one attempt ended, as written into a job's history."""

    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed out"
    CANCELED = "canceled"
    LOST = "lost and reclaimed"
    RETURNED = "returned at shutdown"


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt: int
    worker: str | None
    started_at: int | None
    finished_at: int | None
    outcome: str
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "worker": self.worker,
            "started_at": ms_to_rfc3339(self.started_at),
            "finished_at": ms_to_rfc3339(self.finished_at),
            "outcome": self.outcome,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    type: str
    queue: str
    status: Status
    payload: codec.JsonValue = None
    result: codec.JsonValue = None
    attempts: int = 0
    # The job's own limit; else the one its latest attempt was started under (the handler's,
    # else the worker's default, recorded by the claim); None: neither yet.
    max_attempts: int | None = None
    timeout_seconds: float | None = None
    last_error: str | None = None
    correlation_id: str | None = None
    limit_key: str | None = None  # counts under this key's limits too (ADR 0017)
    schedule: str | None = None  # the periodic schedule that fired the job
    created_at: int = 0
    updated_at: int = 0
    run_at: int | None = None
    next_run_at: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    worker: str | None = None
    cancel_requested: bool = False
    deliveries: int = 0
    history: tuple[Attempt, ...] = field(default=())
    expires_at: int | None = None  # it never starts after this (epoch ms, Redis clock)

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes]) -> Job:
        """Build a Job from HGETALL output (bytes keys and values)."""
        f = {k.decode(): v for k, v in raw.items()}

        def text(name: str) -> str | None:
            value = f.get(name)
            return value.decode() if value is not None else None

        def integer(name: str) -> int | None:
            value = f.get(name)
            return int(value) if value not in (None, b"") else None

        timeout_ms = integer("timeout_ms")
        return cls(
            id=f["id"].decode(),
            type=f["type"].decode(),
            queue=f["queue"].decode(),
            status=Status(f["status"].decode()),
            payload=codec.decode(f.get("payload")),
            result=codec.decode(f.get("result")),
            attempts=integer("attempts") or 0,
            max_attempts=integer("max_attempts") or integer("effective_max_attempts"),
            timeout_seconds=timeout_ms / 1000 if timeout_ms else None,
            last_error=text("last_error"),
            correlation_id=text("correlation_id") or None,
            limit_key=text("limit_key") or None,
            schedule=text("schedule") or None,
            created_at=integer("created_at") or 0,
            updated_at=integer("updated_at") or 0,
            run_at=integer("run_at"),
            next_run_at=integer("next_run_at"),
            started_at=integer("started_at"),
            finished_at=integer("finished_at"),
            worker=text("worker") or None,
            cancel_requested=f.get("cancel_requested") == b"1",
            deliveries=integer("deliveries") or 0,
            history=parse_history(f.get("history")),
            expires_at=integer("expires_at"),
        )

    def to_json(self, omit: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The job as the HTTP API shows it (times RFC 3339 UTC), without the fields named
        in `omit` (a listing leaves out the bulky fields it was not asked for)."""
        shown = self._json()
        for name in omit:
            shown.pop(name, None)
        return shown

    def _json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "queue": self.queue,
            "status": self.status.value,
            "payload": self.payload,
            "result": self.result,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "timeout_seconds": self.timeout_seconds,
            "last_error": self.last_error,
            "created_at": ms_to_rfc3339(self.created_at),
            "updated_at": ms_to_rfc3339(self.updated_at),
            "run_at": ms_to_rfc3339(self.run_at),
            "started_at": ms_to_rfc3339(self.started_at),
            "finished_at": ms_to_rfc3339(self.finished_at),
            "next_run_at": ms_to_rfc3339(self.next_run_at),
            "expires_at": ms_to_rfc3339(self.expires_at),
            "correlation_id": self.correlation_id,
            "limit_key": self.limit_key,
            "schedule": self.schedule,
            "cancel_requested": self.cancel_requested,
            "worker": self.worker,
            "history": [a.to_json() for a in self.history],
        }


def parse_history(raw: bytes | None) -> tuple[Attempt, ...]:
    """History is a JSON array written by the Lua scripts (cjson); empty when absent."""
    if not raw:
        return ()
    items = json.loads(raw)
    if not isinstance(items, list):  # cjson encodes an empty table as {}
        return ()
    return tuple(
        Attempt(
            attempt=int(item.get("attempt", 0)),
            worker=item.get("worker") or None,
            started_at=_int_or_none(item.get("started_at")),
            finished_at=_int_or_none(item.get("finished_at")),
            outcome=str(item.get("outcome", "")),
            error=item.get("error") or None,
        )
        for item in items
    )


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) else None
