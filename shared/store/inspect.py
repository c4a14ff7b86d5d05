"""Queue statistics for operators: how much waits, runs and has finished, per queue.

Read with the queue names, then for each chunk of `CHUNK_QUEUES` queues one round trip of
one read-only script call per queue (``queue_stats.lua``: stream length, the group's pending
and consumers, the oldest undelivered entry, the status index sizes, the pause flag, Redis
TIME). One reply
per queue instead of nine keeps the client's parsing, which dominated the cost of reading
many queues, small. Chunking bounds what one pipeline holds (its commands and replies)
however many queues there are; the round trips are one per chunk. `queue_snapshot` reads
at most a given number of queues (the first by name), so the work of one read is bounded
too. Each queue's numbers are one atomic read (one script); two queues' are not read at
the same instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from conveyor.states import Status
from conveyor.store.keys import Keys
from conveyor.store.scripts import Call, run_pipelined, scripts
from conveyor.values import QueueStats


async def queue_stats(redis: Redis, keys: Keys, queue: str) -> QueueStats | None:
    """The statistics of one queue; None when the queue is unknown."""
    known: Any = await redis.sismember(keys.queues, queue)
    if not known:
        return None
    [stats] = await _stats(redis, keys, [queue])
    return stats


async def all_queue_stats(redis: Redis, keys: Keys) -> list[QueueStats]:
    """The statistics of every known queue, sorted by name."""
    names: Any = await redis.smembers(keys.queues)
    return await _stats(redis, keys, sorted(n.decode() for n in names))


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """The statistics of the first `len(items)` queues by name, and how many queues the
    registry held when it was read (`total`: more than the items when the read was capped)."""

    items: tuple[QueueStats, ...]
    total: int

    @property
    def complete(self) -> bool:
        return len(self.items) == self.total


async def queue_snapshot(redis: Redis, keys: Keys, max_queues: int) -> QueueSnapshot:
    """The statistics of the first `max_queues` known queues by name (all of them when
    there are no more), with the number of known queues."""
    raw: Any = await redis.smembers(keys.queues)
    names = sorted(n.decode() for n in raw)
    stats = await _stats(redis, keys, names[:max_queues])
    return QueueSnapshot(tuple(stats), len(names))


CHUNK_QUEUES = 200  # queues per pipeline: one script call each
# The status indexes queue_stats.lua counts, in its KEYS order (and QueueStats field order).
COUNTED = (
    Status.RUNNING,
    Status.SCHEDULED,
    Status.RETRYING,
    Status.FAILED,
    Status.COMPLETED,
    Status.CANCELED,
    Status.EXPIRED,
)


async def _stats(redis: Redis, keys: Keys, queues: Sequence[str]) -> list[QueueStats]:
    found: list[QueueStats] = []
    for start in range(0, len(queues), CHUNK_QUEUES):
        found += await _chunk(redis, keys, queues[start : start + CHUNK_QUEUES])
    return found


async def _chunk(redis: Redis, keys: Keys, queues: Sequence[str]) -> list[QueueStats]:
    script = scripts().queue_stats
    calls = []
    for name in queues:
        q = keys.queue(name)
        calls.append(Call(script, [q.stream, *(q.index(s) for s in COUNTED), q.paused], []))
    replies = await run_pipelined(redis, calls)
    out = []
    for name, reply in zip(queues, replies, strict=True):
        if isinstance(reply, Exception):
            raise reply
        out.append(_queue(name, reply))
    return out


def _queue(name: str, reply: list[Any]) -> QueueStats:
    length, pending, consumers, now_ms, oldest, *indexes = reply
    age: float | None = None
    if oldest:
        entry_ms = int(_text(oldest).split("-", 1)[0])
        age = max(0, int(now_ms) - entry_ms) / 1000
    running, scheduled, retrying, failed, completed, canceled, expired, paused = (
        int(n) for n in indexes
    )
    return QueueStats(
        name=name,
        waiting=max(0, int(length) - int(pending)),
        pending_in_group=int(pending),
        running=running,
        scheduled=scheduled,
        retrying=retrying,
        failed=failed,
        completed=completed,
        canceled=canceled,
        consumers=int(consumers),
        oldest_waiting_age_seconds=age,
        expired=expired,
        paused=paused == 1,
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
