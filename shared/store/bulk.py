"""Operator actions on many jobs of one queue at once, bounded per call.

Each call handles at most `limit` jobs, in batches (`BATCH` unless told), oldest first,
and reports how many are left, so an HTTP request stays well inside its deadline however
many failed jobs a queue holds; the caller repeats the call while jobs remain. Every job
goes through the same script as the single-job action (replay.lua, purge.lua), which
re-checks its status: a job that changed status since its id was read is left alone.

`purge` is the one purge loop: `ProducerStore.purge` (every job of a status) uses it too.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from conveyor.errors import ValidationError
from conveyor.states import Status
from conveyor.store import id_index, replies
from conveyor.store.keys import Keys
from conveyor.store.scripts import Call, run_pipelined, scripts
from conveyor.values import BulkResult

BATCH = 200  # jobs per round trip: a pipeline of replay calls, or one purge call
MAX_LIMIT = 10_000  # the most jobs one call of the API may handle


def finished(status: Status | str) -> Status:
    """`status` as a finished Status; `ValidationError` on "status" for any other."""
    wanted = Status(status) if status in {s.value for s in Status} else None
    if wanted is None or not wanted.terminal:
        names = ", ".join(sorted(s.value for s in Status if s.terminal))
        raise ValidationError("status", f"only finished jobs may be purged ({names})")
    return wanted


def check_batch(batch: int | None) -> int:
    """The batch size to use: `BATCH` for None; `ValidationError` below 1."""
    if batch is None:
        return BATCH
    if batch < 1:
        raise ValidationError("batch", "must be at least 1")
    return batch


async def replay_failed(redis: Redis, keys: Keys, queue: str, limit: int) -> BulkResult:
    """Run up to `limit` failed jobs of `queue` again (each as `POST /jobs/{id}/retry`)."""
    q = keys.queue(queue)
    replay = scripts().replay
    done = 0
    while done < limit:
        ids = await _oldest(redis, q.index(Status.FAILED), min(BATCH, limit - done))
        if not ids:
            break
        calls = [Call(replay, [*q.header(), q.job(i)], [i]) for i in ids]
        replayed = replies.replayed_count(await run_pipelined(redis, calls))
        done += replayed
        if replayed == 0:  # none of them is failed any more: stop rather than spin
            break
    return BulkResult(done, await _count(redis, q.index(Status.FAILED)))


async def purge(
    redis: Redis,
    keys: Keys,
    queue: str,
    status: Status | str,
    limit: int,
    batch: int | None = None,
) -> BulkResult:
    """Delete up to `limit` jobs of `queue` in the finished `status` now, `batch` per
    script call: they cannot be replayed afterwards. `ValidationError` for a status that
    is not finished, a `limit` or `batch` below 1."""
    wanted = finished(status)
    size = check_batch(batch)
    if limit < 1:
        raise ValidationError("limit", "must be at least 1")
    q = keys.queue(queue)
    index = q.index(wanted)
    done = 0
    while done < limit:
        ids = await _oldest(redis, index, min(size, limit - done))
        if not ids:
            break
        removed = int(
            await scripts().purge(
                redis, [*q.header(), *(q.job(i) for i in ids), q.unique], [wanted.value, *ids]
            )
        )
        done += removed
        if removed:
            await id_index.remove_missing(redis, keys, [(i, queue) for i in ids])
        if removed == 0:  # none of them is in `status` any more: stop rather than spin
            break
    return BulkResult(done, await _count(redis, index))


async def _oldest(redis: Redis, index: str, count: int) -> list[str]:
    members: Any = await redis.zrange(index, 0, count - 1)
    return [m.decode() for m in members]


async def _count(redis: Redis, index: str) -> int:
    n: Any = await redis.zcard(index)
    return int(n)
