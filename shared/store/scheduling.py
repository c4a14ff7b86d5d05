"""The scheduler side of the store: promote due jobs, drop expired index entries.

`promote_queues` and `expire_queues` do one pass over many queues in a constant number of
round trips (pipelines), so a scheduler's pass costs the same few round trips for 5
queues or 5,000."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from conveyor.store import id_index
from conveyor.store.keys import Keys
from conveyor.store.scripts import Call, run_pipelined, scripts


@dataclass(frozen=True, slots=True)
class PromoteResult:
    promoted: int
    now_ms: int  # Redis TIME when the script ran
    next_due_ms: int | None  # earliest due time still in the delayed zset
    jobs: tuple[tuple[str, str | None], ...] = ()  # (job id, correlation id) promoted
    expired: int = 0  # due jobs whose expires_at had passed: ended expired, not promoted


# How long a job that a promotion ended as expired is kept, when the caller names no
# retention (the default of the `result_ttl_seconds` setting).
DEFAULT_TTL_MS = 604_800_000


class SchedulerStore:
    def __init__(self, redis: Redis, keys: Keys, *, ttl_ms: int = DEFAULT_TTL_MS) -> None:
        """`ttl_ms`: the retention of a job a promotion ends as expired."""
        self.redis = redis
        self.keys = keys
        self.ttl_ms = ttl_ms
        self.scripts = scripts()

    async def promote_due(self, queue: str, now_ms: int, limit: int) -> PromoteResult:
        """Move up to `limit` due jobs of `queue` onto its stream.

        `now_ms` only picks candidates (a scheduler's estimate of Redis time); the script
        decides by Redis TIME, so a skewed estimate can delay a job, never promote it early.
        """
        q = self.keys.queue(queue)
        ids: Any = await self.redis.zrange(
            q.delayed, "-inf", now_ms, byscore=True, offset=0, num=limit
        )
        job_ids = [i.decode() for i in ids]
        keys = q.header() + [q.job(i) for i in job_ids]
        reply = await self.scripts.promote(self.redis, keys, [self.ttl_ms, *job_ids])
        return _promote_result(reply)

    async def expire(self, queue: str, limit: int) -> int:
        """Remove the index entries (and id index entries) of finished jobs past their
        retention; how many."""
        q = self.keys.queue(queue)
        reply = await self.scripts.expire(self.redis, [*q.header(), q.unique], [limit])
        ids = [i.decode() for i in reply]
        await id_index.remove(self.redis, self.keys, ids)
        return len(ids)


@dataclass(frozen=True, slots=True)
class QueuePromotion:
    """What one pass did for one queue (`SchedulerStore.promote_queues`)."""

    queue: str
    result: PromoteResult
    more: bool  # a full batch was promoted: more jobs may be due now


async def promote_queues(
    redis: Redis,
    keys: Keys,
    queues: Sequence[str],
    now_ms: int,
    limit: int,
    *,
    ttl_ms: int = DEFAULT_TTL_MS,
) -> list[QueuePromotion]:
    """One pass of `promote_due` over many queues in at most three round trips.

    One pipeline reads each queue's earliest due time (one command per queue: all an idle
    pass costs); for the queues with something due by `now_ms`, one pipeline reads their
    candidates (at most `limit` each), and one runs their promote scripts. The caller
    bounds `queues` per call (round trips stay three whatever their number; the pipelines
    grow with it). `ttl_ms`: the retention of a due job that ends expired instead.
    """
    if not queues:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.zrange(keys.queue(queue).delayed, 0, 0, withscores=True)
        earliest: list[Any] = await pipe.execute()
    out: dict[str, QueuePromotion] = {}
    due: list[str] = []
    for queue, first in zip(queues, earliest, strict=True):
        if first and int(first[0][1]) <= now_ms:
            due.append(queue)
        else:
            next_due = int(first[0][1]) if first else None
            out[queue] = QueuePromotion(queue, PromoteResult(0, now_ms, next_due), False)
    if due:
        async with redis.pipeline(transaction=False) as pipe:
            for queue in due:
                delayed = keys.queue(queue).delayed
                pipe.zrange(delayed, "-inf", now_ms, byscore=True, offset=0, num=limit)
            candidates: list[Any] = await pipe.execute()
        promote = scripts().promote
        calls: list[Call] = []
        for queue, members in zip(due, candidates, strict=True):
            ids = [m.decode() for m in members]
            q = keys.queue(queue)
            calls.append(Call(promote, [*q.header(), *(q.job(j) for j in ids)], [ttl_ms, *ids]))
        for queue, reply in zip(due, await run_pipelined(redis, calls), strict=True):
            if isinstance(reply, Exception):
                raise reply
            result = _promote_result(reply)
            out[queue] = QueuePromotion(queue, result, result.promoted >= limit)
    return [out[q] for q in queues]


async def expire_queues(redis: Redis, keys: Keys, queues: Sequence[str], limit: int) -> int:
    """One expire script call per queue, all in one round trip, then one to drop the
    expired jobs' id index entries (none when nothing expired); how many jobs expired.
    Queues that had `limit` or more to drop are sent again, until none has."""
    expire = scripts().expire
    todo = list(queues)
    count = 0
    while todo:
        calls = [
            Call(expire, [*keys.queue(q).header(), keys.queue(q).unique], [limit]) for q in todo
        ]
        replies = await run_pipelined(redis, calls)
        again, expired = [], []
        for queue, reply in zip(todo, replies, strict=True):
            if isinstance(reply, Exception):
                raise reply
            ids = [i.decode() for i in reply]
            expired += ids
            if len(ids) >= limit:
                again.append(queue)
        await id_index.remove(redis, keys, expired)
        count += len(expired)
        todo = again
    return count


def _promote_result(reply: Any) -> PromoteResult:
    promoted, now, next_due, expired = reply[:4]
    moved = tuple(
        (job_id.decode(), corr.decode() or None)
        for job_id, corr in zip(reply[4::2], reply[5::2], strict=True)
    )
    return PromoteResult(
        int(promoted), int(now), None if int(next_due) < 0 else int(next_due), moved, int(expired)
    )
