"""The scheduler side of the store: promote due jobs, drop expired index entries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from conveyor.store.keys import Keys
from conveyor.store.scripts import scripts


@dataclass(frozen=True, slots=True)
class PromoteResult:
    promoted: int
    now_ms: int  # Redis TIME when the script ran
    next_due_ms: int | None  # earliest due time still in the delayed zset
    jobs: tuple[tuple[str, str | None], ...] = ()  # (job id, correlation id) promoted


class SchedulerStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
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
        reply = await self.scripts.promote(self.redis, keys, job_ids)
        promoted, now, next_due = reply[:3]
        moved = tuple(
            (job_id.decode(), corr.decode() or None)
            for job_id, corr in zip(reply[3::2], reply[4::2], strict=True)
        )
        return PromoteResult(
            int(promoted), int(now), None if int(next_due) < 0 else int(next_due), moved
        )

    async def expire(self, queue: str, limit: int) -> int:
        """Remove the index entries of finished jobs past their retention; how many."""
        q = self.keys.queue(queue)
        return int(await self.scripts.expire(self.redis, q.header(), [limit]))
