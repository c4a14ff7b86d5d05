"""Concurrency and rate limits per limit key of a queue (ADR 0017): validation, and the
operator's reads and writes of a queue's limits hash.

A limit key is ``queue`` (every job of the queue), ``type:<job type>`` or a name that jobs
carry in their ``limit_key`` field (a tenant id, say). The claim and finishing scripts
enforce the limits (lua/_limits.lua); this module only configures and reports them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from conveyor.errors import ConveyorError, ValidationError
from conveyor.ids import NAME_PATTERN
from conveyor.store.keys import Keys
from conveyor.store.scripts import Call, run_pipelined, scripts

QUEUE_KEY = "queue"  # the limit key of the whole queue
TYPE_PREFIX = "type:"
LIMIT_KEY_PATTERN = rf"(?:{TYPE_PREFIX}{NAME_PATTERN}|{NAME_PATTERN})"  # `queue` is a name
_LIMIT_KEY = re.compile(LIMIT_KEY_PATTERN)
MAX_RUNNING = 1_000_000
MIN_PER_SECOND = 0.001  # one start per 1,000 s: the GCRA interval stays a finite number
MAX_PER_SECOND = 1_000_000.0
MAX_BURST = 1_000_000
_FIELDS = ("max_running", "max_per_second", "burst")


class LimitCountReached(ConveyorError):
    """A queue already has `limit` limit keys (`CONVEYOR_MAX_LIMITS_PER_QUEUE`)."""

    def __init__(self, queue: str, limit: int) -> None:
        super().__init__(
            f"queue {queue} has {limit} limit keys already (CONVEYOR_MAX_LIMITS_PER_QUEUE)"
        )
        self.queue = queue
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Limit:
    """The limits of one key: at most `max_running` attempts at once; starts spread to
    `max_per_second`, with up to `burst` at once (GCRA, by Redis's clock)."""

    max_running: int | None = None
    max_per_second: float | None = None
    burst: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in _FIELDS if getattr(self, f) is not None}

    def encode(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class LimitState:
    """A configured limit key and what it holds now."""

    key: str
    limit: Limit
    running: int  # slots held (including slots of dead workers until their lease ends)
    held: int  # jobs waiting for a slot

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, **self.limit.to_json(), "running": self.running, "held": self.held}


def validate_limit_key(value: object, field: str = "key") -> str:
    """``queue``, ``type:<job type>``, or a job's `limit_key` (a name)."""
    if not isinstance(value, str) or not _LIMIT_KEY.fullmatch(value):
        raise ValidationError(field, f"must be 'queue', 'type:<job type>' or match {NAME_PATTERN}")
    return value


def parse_limit(body: object, where: str = "") -> Limit:
    """The JSON body of ``PUT /queues/{queue}/limits/{key}``."""
    if not isinstance(body, Mapping):
        raise ValidationError(where or "body", "must be a JSON object")
    for name, value in body.items():
        if name not in _FIELDS:
            raise ValidationError(f"{where}{name}", f"unknown field; allowed: {', '.join(_FIELDS)}")
        if value is None:
            raise ValidationError(f"{where}{name}", "must not be null: leave it out instead")
    max_running = _integer(body.get("max_running"), f"{where}max_running", MAX_RUNNING)
    rate = body.get("max_per_second")
    max_per_second: float | None = None
    if rate is not None:
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not math.isfinite(rate)
            or not MIN_PER_SECOND <= rate <= MAX_PER_SECOND
        ):
            raise ValidationError(
                f"{where}max_per_second",
                f"must be a number from {MIN_PER_SECOND:g} to {MAX_PER_SECOND:g}",
            )
        max_per_second = float(rate)
    burst = _integer(body.get("burst"), f"{where}burst", MAX_BURST)
    if burst is not None and max_per_second is None:
        raise ValidationError(f"{where}burst", "is only allowed with max_per_second")
    if max_running is None and max_per_second is None:
        raise ValidationError(where or "body", "set max_running, max_per_second, or both")
    return Limit(max_running, max_per_second, burst)


def _integer(value: object, field: str, most: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 3.0 is an integer in JSON (and JSON Schema)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise ValidationError(field, f"must be an integer from 1 to {most}")
    return value


def _decode(raw: bytes | str) -> Limit | None:
    """A stored limit; None for a removed key still draining its held jobs."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("draining"):
        return None
    try:
        return parse_limit(data)
    except ValidationError:
        return None


class LimitsStore:
    def __init__(self, redis: Redis, keys: Keys, *, max_per_queue: int = 100) -> None:
        self.redis = redis
        self.keys = keys
        self.max_per_queue = max_per_queue
        self.scripts = scripts()

    async def set(self, queue: str, key: str, limit: Limit) -> bool:
        """Set the limits of `key`; True when the key is new. Raises `LimitCountReached`."""
        q = self.keys.queue(queue)
        reply = await self.scripts.limits_set(
            self.redis, [*q.header(), q.limits], [key, limit.encode(), self.max_per_queue]
        )
        if int(reply) < 0:
            raise LimitCountReached(queue, self.max_per_queue)
        return int(reply) == 1

    async def delete(self, queue: str, key: str) -> bool:
        """Remove the limits of `key`; False when it had none. Its held jobs start."""
        q = self.keys.queue(queue)
        return (
            int(await self.scripts.limits_delete(self.redis, [*q.header(), q.limits], [key])) == 1
        )

    async def states(self, queue: str) -> list[LimitState]:
        """Every limit key of the queue, by name, with its running and held counts: two
        round trips, bounded by the queue's limit keys (at most `max_per_queue`)."""
        q = self.keys.queue(queue)
        raw: dict[Any, Any] = await self.redis.hgetall(q.limits)
        configured = sorted(
            (_text(k), limit) for k, v in raw.items() if (limit := _decode(v)) is not None
        )
        if not configured:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, _ in configured:
                pipe.zcard(q.limit_slots(key))
                pipe.zcard(q.limit_held(key))
            counts: list[Any] = await pipe.execute(raise_on_error=False)
        out = []
        for i, (key, limit) in enumerate(configured):
            running, held = counts[2 * i], counts[2 * i + 1]
            out.append(
                LimitState(
                    key,
                    limit,
                    running if isinstance(running, int) else 0,
                    held if isinstance(held, int) else 0,
                )
            )
        return out

    async def sweep(self, queues: Sequence[str]) -> int:
        """The scheduler's pass (limits_sweep.lua) over `queues` in one round trip: free
        the slots of dead workers' attempts, start held jobs; how many were started."""
        if not queues:
            return 0
        calls = [Call(self.scripts.limits_sweep, self.keys.queue(q).header(), []) for q in queues]
        replies = await run_pipelined(self.redis, calls)
        return sum(r for r in replies if isinstance(r, int))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
