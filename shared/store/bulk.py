"""Operator actions on many jobs of one queue at once, bounded per call.

Each call handles at most `limit` jobs, in batches of `BATCH`, oldest first, and reports
how many are left, so an HTTP request stays well inside its deadline however many failed
jobs a queue holds; the caller repeats the call while jobs remain. Every job goes through
the same script as the single-job action (replay.lua, purge.lua), which re-checks its
status: a job that changed status since its id was read is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from conveyor.states import Status
from conveyor.store.keys import Keys
from conveyor.store.scripts import Call, run_pipelined, scripts

BATCH = 200  # jobs per round trip: a pipeline of replay calls, or one purge call
MAX_LIMIT = 10_000  # the most jobs one call may handle


@dataclass(frozen=True, slots=True)
class BulkResult:
    done: int  # jobs retried or purged by this call
    remaining: int  # jobs still in the status afterwards

    def to_json(self, verb: str) -> dict[str, int]:
        return {verb: self.done, "remaining": self.remaining}


async def retry_failed(redis: Redis, keys: Keys, queue: str, limit: int) -> BulkResult:
    """Run up to `limit` failed jobs of `queue` again (each as `POST /jobs/{id}/retry`)."""
    q = keys.queue(queue)
    replay = scripts().replay
    done = 0
    while done < limit:
        ids = await _oldest(redis, q.index(Status.FAILED), min(BATCH, limit - done))
        if not ids:
            break
        calls = [Call(replay, [*q.header(), q.job(i)], [i]) for i in ids]
        replies = await run_pipelined(redis, calls)
        retried = sum(1 for reply in replies if _word(reply) == "pending")
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        done += retried
        if retried == 0:  # none of them is failed any more: stop rather than spin
            break
    return BulkResult(done, await _count(redis, q.index(Status.FAILED)))


async def purge(redis: Redis, keys: Keys, queue: str, status: Status, limit: int) -> BulkResult:
    """Delete up to `limit` jobs of `queue` in the finished `status` now (as
    `ProducerStore.purge`, but bounded): they cannot be retried afterwards."""
    if not status.terminal:
        raise ValueError(f"{status.value} is not a finished status")
    q = keys.queue(queue)
    index = q.index(status)
    done = 0
    while done < limit:
        ids = await _oldest(redis, index, min(BATCH, limit - done))
        if not ids:
            break
        removed = int(
            await scripts().purge(
                redis, [*q.header(), *(q.job(i) for i in ids)], [status.value, *ids]
            )
        )
        done += removed
        if removed == 0:
            break
    return BulkResult(done, await _count(redis, index))


async def _oldest(redis: Redis, index: str, count: int) -> list[str]:
    members: Any = await redis.zrange(index, 0, count - 1)
    return [m.decode() for m in members]


async def _count(redis: Redis, index: str) -> int:
    n: Any = await redis.zcard(index)
    return int(n)


def _word(reply: Any) -> str | None:
    if isinstance(reply, list) and reply and isinstance(reply[0], bytes):
        return reply[0].decode()
    return None
