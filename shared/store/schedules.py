"""The store side of periodic schedules: create or replace, read, list, delete, and what
the scheduler needs to fire them (worker/periodic.py).

Each schedule is a hash; one zset holds every name by its next fire time. Both share the
hash tag ``{<prefix>:schedules}``, so each schedule script runs in one Cluster slot. Their
number is capped (`max_schedules`), so a listing reads a bounded number of hashes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from conveyor import codec
from conveyor.ids import ms_to_rfc3339
from conveyor.schedules import (
    CatchUp,
    Overlap,
    ScheduleLimitReached,
    ScheduleNotFound,
    ScheduleSpec,
)
from conveyor.store.keys import Keys
from conveyor.store.scripts import Call, run_pipelined, scripts

DEFAULT_MAX_SCHEDULES = 1000
log = logging.getLogger("conveyor.schedules")


@dataclass(frozen=True, slots=True)
class Schedule:
    """A stored schedule: its definition, and where its firing stands."""

    spec: ScheduleSpec
    next_run_at: int  # epoch ms
    last_run_at: int | None
    last_job_id: str | None
    version: int
    created_at: int
    updated_at: int

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes]) -> Schedule:
        f = {k.decode(): v for k, v in raw.items()}

        def text(name: str) -> str | None:
            value = f.get(name)
            return value.decode() if value else None

        def integer(name: str) -> int | None:
            value = f.get(name)
            return int(value) if value else None

        every = integer("every_seconds")
        payload = f.get("payload", b"")
        spec = ScheduleSpec(
            name=f["name"].decode(),
            type=f["type"].decode(),
            queue=f["queue"].decode(),
            payload=payload,
            cron=text("cron"),
            timezone=text("timezone") or "UTC",
            every_seconds=every,
            max_attempts=integer("max_attempts"),
            timeout_ms=integer("timeout_ms"),
            overlap=Overlap(text("overlap") or Overlap.ALLOW),
            catch_up=CatchUp(text("catch_up") or CatchUp.ONE),
            payload_value=codec.decode(payload) if payload else None,
        )
        return cls(
            spec=spec,
            next_run_at=integer("next_run_at") or 0,
            last_run_at=integer("last_run_at"),
            last_job_id=text("last_job_id"),
            version=integer("version") or 0,
            created_at=integer("created_at") or 0,
            updated_at=integer("updated_at") or 0,
        )

    def to_json(self) -> dict[str, Any]:
        s = self.spec
        return {
            "name": s.name,
            "type": s.type,
            "queue": s.queue,
            "payload": s.payload_value,
            "cron": s.cron,
            "timezone": s.timezone if s.cron is not None else None,
            "every_seconds": s.every_seconds,
            "max_attempts": s.max_attempts,
            "timeout_seconds": None if s.timeout_ms is None else s.timeout_ms / 1000,
            "overlap": s.overlap.value,
            "catch_up": s.catch_up.value,
            "next_run_at": ms_to_rfc3339(self.next_run_at),
            "last_run_at": ms_to_rfc3339(self.last_run_at),
            "last_job_id": self.last_job_id,
            "created_at": ms_to_rfc3339(self.created_at),
            "updated_at": ms_to_rfc3339(self.updated_at),
        }


def _decoded(raw: dict[bytes, bytes]) -> Schedule | None:
    """A schedule's hash as a `Schedule`; None (logged) for one no script wrote (edited by
    hand): a reader skips it rather than fail on it."""
    try:
        return Schedule.from_hash(raw)
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        name = raw.get(b"name", b"?").decode(errors="replace")
        log.warning(
            "unreadable schedule hash skipped", extra={"schedule": name, "error": repr(exc)}
        )
        return None


def _definition(spec: ScheduleSpec) -> list[str | int | bytes]:
    """The definition fields of a schedule's hash, as field, value pairs."""
    fields: list[str | int | bytes] = [
        "type",
        spec.type,
        "queue",
        spec.queue,
        "payload",
        spec.payload,
        "overlap",
        spec.overlap.value,
        "catch_up",
        spec.catch_up.value,
    ]
    if spec.every_seconds is not None:
        fields += ["every_seconds", spec.every_seconds]
    else:
        assert spec.cron is not None
        fields += ["cron", spec.cron, "timezone", spec.timezone]
    if spec.max_attempts is not None:
        fields += ["max_attempts", spec.max_attempts]
    if spec.timeout_ms is not None:
        fields += ["timeout_ms", spec.timeout_ms]
    return fields


async def redis_now_ms(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


class ScheduleStore:
    def __init__(
        self, redis: Redis, keys: Keys, *, max_schedules: int = DEFAULT_MAX_SCHEDULES
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.max_schedules = max_schedules
        self.scripts = scripts()

    def _keys(self, name: str) -> list[str]:
        return [self.keys.schedule(name), self.keys.schedules]

    async def put(self, spec: ScheduleSpec) -> tuple[Schedule, bool]:
        """Create or replace a schedule; the stored schedule and whether it is new.
        `ScheduleLimitReached` when it is new and `max_schedules` exist, nothing written.
        A replace that keeps the timing keeps the next fire time; a new timing fires next
        at its first fire time after now (Redis TIME)."""
        next_run = spec.next_after(await redis_now_ms(self.redis))
        reply = await self.scripts.schedule_put(
            self.redis,
            self._keys(spec.name),
            [spec.name, self.max_schedules, spec.timing, next_run, *_definition(spec)],
        )
        if int(reply[0]) < 0:
            raise ScheduleLimitReached(self.max_schedules)
        return await self.get(spec.name), int(reply[0]) == 1

    async def get(self, name: str) -> Schedule:
        raw: Any = await self.redis.hgetall(self.keys.schedule(name))
        if not raw:
            raise ScheduleNotFound(name)
        return Schedule.from_hash(raw)

    async def all(self) -> list[Schedule]:
        """Every schedule, by name: at most `max_schedules` hashes, one round trip."""
        members: Any = await self.redis.zrange(self.keys.schedules, 0, -1)
        names = sorted(n.decode() for n in members)
        return [s for s in await self.read(names) if s is not None]

    async def read(self, names: Sequence[str]) -> list[Schedule | None]:
        """The schedules named, in one round trip (None: gone, or unreadable)."""
        if not names:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self.keys.schedule(name))
            raws: list[Any] = await pipe.execute()
        return [_decoded(raw) if raw else None for raw in raws]

    async def delete(self, name: str) -> None:
        """`ScheduleNotFound` when there is none; the jobs it created stay."""
        if not int(await self.scripts.schedule_delete(self.redis, self._keys(name), [name, ""])):
            raise ScheduleNotFound(name)

    async def earliest(self, limit: int) -> list[tuple[str, int]]:
        """The `limit` schedules that fire first: (name, next fire time), earliest first.
        One command answers both what is due and, when nothing is, when the next is."""
        rows: Any = await self.redis.zrange(self.keys.schedules, 0, limit - 1, withscores=True)
        return [(n.decode(), int(score)) for n, score in rows]

    async def drop_leftovers(self, names: Sequence[str]) -> None:
        """Remove names whose hash is gone from the zset (only those: see the script)."""
        calls = [Call(self.scripts.schedule_delete, self._keys(n), [n, "1"]) for n in names]
        for reply in await run_pipelined(self.redis, calls):
            if isinstance(reply, Exception):
                raise reply

    async def fired(self, advances: Sequence[Advance]) -> list[bool]:
        """Record handled fire times (compare-and-set each): which advanced, one round trip."""
        calls = [
            Call(
                self.scripts.schedule_fired,
                self._keys(a.name),
                [
                    a.name,
                    a.planned_next,
                    a.version,
                    a.next_run_at,
                    "" if a.last_run_at is None else a.last_run_at,
                    a.last_job_id or "",
                ],
            )
            for a in advances
        ]
        out: list[bool] = []
        for reply in await run_pipelined(self.redis, calls):
            if isinstance(reply, Exception):
                raise reply
            out.append(int(reply) == 1)
        return out


@dataclass(frozen=True, slots=True)
class Advance:
    """One schedule's move past its due fire times (`ScheduleStore.fired`)."""

    name: str
    planned_next: int  # the next_run_at the plan was made from
    version: int
    next_run_at: int
    last_run_at: int | None = None  # the latest fire time that got a job (None: none did)
    last_job_id: str | None = None
