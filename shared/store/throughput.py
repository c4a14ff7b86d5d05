"""Finished jobs per minute and queue, as the finish scripts count them.

complete.lua and fail.lua add each batch's completed and failed jobs to the queue's
throughput hash (``<prefix>:{<queue>}:throughput``) in the same atomic step that finishes
the jobs, so the counts survive the jobs' expiry. The hash is a ring of `SLOTS` one-minute
slots (see ``count_finished`` in lua/_lib.lua): ``m:<slot>`` names the minute a slot
counts, ``completed:<slot>`` and ``failed:<slot>`` its counts. A slot is reset when a later
minute reuses it, so only the last `SLOTS` minutes can be read, and a slot whose minute is
not the one asked for reads as zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from conveyor.ids import ms_to_rfc3339
from conveyor.store.keys import Keys

SLOTS = 60  # THROUGHPUT_SLOTS in lua/_lib.lua
MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class Minute:
    """The jobs of one queue that finished in one minute (Redis clock)."""

    start_ms: int
    completed: int
    failed: int

    def to_json(self) -> dict[str, Any]:
        return {
            "start": ms_to_rfc3339(self.start_ms),
            "completed": self.completed,
            "failed": self.failed,
        }


async def throughput(
    redis: Redis, keys: Keys, queues: Sequence[str], minutes: int
) -> dict[str, list[Minute]]:
    """The last `minutes` minutes (1..SLOTS) of each queue, oldest first, the current
    (still counting) minute last; one pipelined round trip however many queues."""
    if not 1 <= minutes <= SLOTS:
        raise ValueError(f"minutes must be between 1 and {SLOTS}")
    async with redis.pipeline(transaction=False) as pipe:
        pipe.execute_command("TIME")  # a Cluster pipeline refuses pipe.time()
        for name in queues:
            pipe.hgetall(keys.queue(name).throughput)
        (seconds, micros), *rings = await pipe.execute()
    now_minute = (int(seconds) * 1000 + int(micros) // 1000) // MINUTE_MS
    wanted = range(now_minute - minutes + 1, now_minute + 1)
    return {name: _minutes(ring, wanted) for name, ring in zip(queues, rings, strict=True)}


def _minutes(ring: dict[bytes, bytes], wanted: range) -> list[Minute]:
    out = []
    for minute in wanted:
        slot = minute % SLOTS
        held = ring.get(f"m:{slot}".encode())
        if held is None or _int(held) != minute:
            out.append(Minute(minute * MINUTE_MS, 0, 0))
            continue
        completed = _int(ring.get(f"completed:{slot}".encode()))
        failed = _int(ring.get(f"failed:{slot}".encode()))
        out.append(Minute(minute * MINUTE_MS, completed, failed))
    return out


def _int(value: bytes | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0
