"""The id index: job id -> queue, so a lookup by id costs the same whatever the number of
queues (docs/adr/0008-queue-registry.md, superseding ADR 4's probe of every queue).

The index is spread over `ID_SHARDS` hashes (`<prefix>:ids:<n>`, n = CRC32(id) mod
ID_SHARDS), each in its own Cluster slot, so it cannot be written by the job's own script.
Its one rule keeps it right without that: an entry is written before its job's enqueue
script runs and removed only after the job's hash is gone. So every job that exists has
its entry; what a crash between the two steps can leave is an entry naming a queue that
does not hold the job, which a lookup answers as not found (and which costs one field
until the cleanup of that id runs again).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from redis.asyncio import Redis

from conveyor.store.keys import Keys


def add_commands(keys: Keys, entries: Iterable[tuple[str, str]]) -> list[tuple[str, ...]]:
    """HSET commands writing (job id, queue) entries, one per shard touched."""
    by_shard: dict[str, list[str]] = {}
    for job_id, queue in entries:
        by_shard.setdefault(keys.id_index(job_id), []).extend((job_id, queue))
    return [("HSET", shard, *fields) for shard, fields in by_shard.items()]


async def add(redis: Redis, keys: Keys, entries: Sequence[tuple[str, str]]) -> None:
    """Write the entries (one round trip) before the jobs they name are created."""
    commands = add_commands(keys, entries)
    if not commands:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for command in commands:
            pipe.execute_command(*command)
        await pipe.execute()


async def queue_of(redis: Redis, keys: Keys, job_id: str) -> str | None:
    """The queue the index names for `job_id` (None: no such job)."""
    raw: Any = await redis.hget(keys.id_index(job_id), job_id)
    return None if raw is None else raw.decode()


async def remove(redis: Redis, keys: Keys, job_ids: Iterable[str]) -> None:
    """Drop the entries of jobs whose hashes are gone (expired, purged, never created)."""
    by_shard: dict[str, list[str]] = {}
    for job_id in job_ids:
        by_shard.setdefault(keys.id_index(job_id), []).append(job_id)
    if not by_shard:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for shard, ids in by_shard.items():
            pipe.hdel(shard, *ids)
        await pipe.execute()


async def remove_missing(redis: Redis, keys: Keys, jobs: Sequence[tuple[str, str]]) -> None:
    """Drop the entries of those (job id, queue) whose job hash does not exist: after a
    create that wrote only some of its jobs (a refused chunk, an idempotent repeat)."""
    if not jobs:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for job_id, queue in jobs:
            pipe.exists(keys.queue(queue).job(job_id))
        found: list[Any] = await pipe.execute()
    await remove(redis, keys, [j for (j, _), e in zip(jobs, found, strict=True) if not int(e)])


BACKFILL_PAGE = 1000  # ids read and written per round trip pair by `backfill`


async def backfill(redis: Redis, keys: Keys, queues: Sequence[str]) -> int:
    """Write the entries of every job of `queues` (their `idx:all`), for jobs created
    before the index existed; how many were written. Idempotent, `BACKFILL_PAGE` ids per
    pair of round trips; marks the index filled at the end (`backfilled`)."""
    count = 0
    for queue in queues:
        index = keys.queue(queue).all_index
        lower = "-"
        while True:
            page: Any = await redis.zrange(
                index, lower, "+", bylex=True, offset=0, num=BACKFILL_PAGE
            )
            ids = [m.decode() for m in page]
            if not ids:
                break
            await add(redis, keys, [(i, queue) for i in ids])
            count += len(ids)
            if len(ids) < BACKFILL_PAGE:
                break
            lower = f"({ids[-1]}"
    await redis.set(keys.id_index_filled, "1")
    return count


async def backfilled(redis: Redis, keys: Keys) -> bool:
    """True once `backfill` completed for this prefix."""
    return bool(await redis.exists(keys.id_index_filled))
