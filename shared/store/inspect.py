"""Queue statistics for operators: how much waits, runs and has finished, per queue.

Read with plain commands, pipelined: the queue names, then for each chunk of
`CHUNK_QUEUES` queues one round trip of XLEN + XINFO GROUPS + the status index sizes and one
of Redis TIME + the oldest undelivered stream entry. Chunking bounds what one pipeline holds
(its commands and replies) however many queues there are; the round trips are two per
chunk. `queue_snapshot` reads at most a given number of queues (the first by name), so the
work of one read is bounded too. The numbers are not one atomic snapshot: a job moving
between two reads may be counted in neither or both of two states.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from conveyor.states import Status
from conveyor.store.keys import GROUP, Keys
from conveyor.values import QueueStats

# Status indexes counted, in QueueStats field order.
COUNTED = (
    Status.RUNNING,
    Status.SCHEDULED,
    Status.RETRYING,
    Status.FAILED,
    Status.COMPLETED,
    Status.CANCELED,
)


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


@dataclass(frozen=True, slots=True)
class _Counts:
    """What the first round trip tells about one queue."""

    length: int
    pending: int
    consumers: int
    last_delivered: str
    indexes: list[int]


CHUNK_QUEUES = 100  # queues per pipeline: 800 commands in the first, 101 in the second


async def _stats(redis: Redis, keys: Keys, queues: Sequence[str]) -> list[QueueStats]:
    found: list[QueueStats] = []
    for start in range(0, len(queues), CHUNK_QUEUES):
        found += await _chunk(redis, keys, queues[start : start + CHUNK_QUEUES])
    return found


async def _chunk(redis: Redis, keys: Keys, queues: Sequence[str]) -> list[QueueStats]:
    per_queue = 2 + len(COUNTED)
    async with redis.pipeline(transaction=False) as pipe:
        for name in queues:
            q = keys.queue(name)
            pipe.xlen(q.stream)
            pipe.xinfo_groups(q.stream)  # an error when the stream does not exist yet
            for status in COUNTED:
                pipe.zcard(q.index(status))
        first = await pipe.execute(raise_on_error=False)
    counts = [_counts(first[i * per_queue : (i + 1) * per_queue]) for i in range(len(queues))]

    async with redis.pipeline(transaction=False) as pipe:
        pipe.execute_command("TIME")  # a Cluster pipeline refuses pipe.time()
        for name, c in zip(queues, counts, strict=True):
            # The oldest entry the group has not delivered yet.
            pipe.xrange(keys.queue(name).stream, f"({c.last_delivered}", "+", count=1)
        (seconds, micros), *oldest = await pipe.execute()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    return [
        _queue(name, c, entries, now_ms)
        for name, c, entries in zip(queues, counts, oldest, strict=True)
    ]


def _counts(replies: list[Any]) -> _Counts:
    length, groups, *indexes = replies
    if isinstance(groups, ResponseError) and not isinstance(length, Exception):
        groups = []  # no stream yet (XLEN of a missing key is 0)
    for reply in (length, groups, *indexes):
        if isinstance(reply, Exception):
            raise reply
    pending, consumers, last_delivered = 0, 0, "0-0"
    for group in groups:
        if _text(group["name"]) == GROUP:
            pending = int(group["pending"])
            consumers = int(group["consumers"])
            last_delivered = _text(group["last-delivered-id"])
    return _Counts(int(length), pending, consumers, last_delivered, [int(n) for n in indexes])


def _queue(name: str, c: _Counts, oldest: list[Any], now_ms: int) -> QueueStats:
    age: float | None = None
    if oldest:
        entry_ms = int(_text(oldest[0][0]).split("-", 1)[0])
        age = max(0, now_ms - entry_ms) / 1000
    running, scheduled, retrying, failed, completed, canceled = c.indexes
    return QueueStats(
        name=name,
        waiting=max(0, c.length - c.pending),
        pending_in_group=c.pending,
        running=running,
        scheduled=scheduled,
        retrying=retrying,
        failed=failed,
        completed=completed,
        canceled=canceled,
        consumers=c.consumers,
        oldest_waiting_age_seconds=age,
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
