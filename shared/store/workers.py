"""Worker heartbeats: who is alive, where, doing what.

Each worker keeps a small hash (``<prefix>:worker:<id>``) that expires when its heartbeats
stop, and its id in the ``<prefix>:workers`` zset scored by the last heartbeat.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from conveyor.store.keys import Keys
from conveyor.values import WorkerInfo

STALE_AFTER_BEATS = 3  # a worker missing this many heartbeats is considered gone


class WorkerRegistry:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def beat(
        self, worker_id: str, info: Mapping[str, str | int | float], interval_s: float
    ) -> None:
        ttl_ms = int(interval_s * 1000 * STALE_AFTER_BEATS)
        now_ms = await self._now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            fields: dict[str, str | int | float] = {**info, "last_seen": now_ms}
            pipe.hset(self.keys.worker(worker_id), mapping=fields)  # type: ignore[arg-type]
            pipe.pexpire(self.keys.worker(worker_id), ttl_ms)
            pipe.zadd(self.keys.workers, {worker_id: now_ms})
            pipe.zremrangebyscore(self.keys.workers, "-inf", now_ms - ttl_ms)
            await pipe.execute()

    async def remove(self, worker_id: str) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self.keys.worker(worker_id))
            pipe.zrem(self.keys.workers, worker_id)
            await pipe.execute()

    async def live(self) -> list[dict[str, Any]]:
        """The workers whose heartbeat hash still exists, with their fields."""
        members: Any = await self.redis.zrange(self.keys.workers, 0, -1)
        ids = [i.decode() for i in members]
        async with self.redis.pipeline(transaction=False) as pipe:
            for worker_id in ids:
                pipe.hgetall(self.keys.worker(worker_id))
            raws = await pipe.execute()
        return [
            {"id": worker_id, **{k.decode(): v.decode() for k, v in raw.items()}}
            for worker_id, raw in zip(ids, raws, strict=True)
            if raw
        ]

    async def recent(self, limit: int) -> tuple[list[dict[str, Any]], int]:
        """At most `limit` live workers, the most recently seen first, and how many ids the
        registry holds (a few may be gone already): two round trips of at most `limit` + 2
        commands, however many workers there are."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self.keys.workers)
            pipe.zrevrange(self.keys.workers, 0, limit - 1)
            total, members = await pipe.execute()
        ids = [i.decode() for i in members]
        async with self.redis.pipeline(transaction=False) as pipe:
            for worker_id in ids:
                pipe.hgetall(self.keys.worker(worker_id))
            raws = await pipe.execute()
        live = [
            {"id": worker_id, **{k.decode(): v.decode() for k, v in raw.items()}}
            for worker_id, raw in zip(ids, raws, strict=True)
            if raw
        ]
        return live, int(total)

    async def infos(self) -> list[WorkerInfo]:
        """The live workers, by id, as values."""
        return sorted((WorkerInfo.from_heartbeat(raw) for raw in await self.live()), key=_by_id)

    async def _now_ms(self) -> int:
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000


def worker_json(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A worker's heartbeat hash (every value a string) in the types the API shows; a
    missing or garbled field is None rather than an error."""
    return WorkerInfo.from_heartbeat(raw).to_json()


def _by_id(info: WorkerInfo) -> str:
    return info.id
