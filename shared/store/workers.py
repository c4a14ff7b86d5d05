"""Worker heartbeats: who is alive, where, doing what.

Each worker keeps a small hash (``<prefix>:worker:<id>``) that expires when its heartbeats
stop, and its id in the ``<prefix>:workers`` zset scored by the last heartbeat.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from conveyor.ids import ms_to_rfc3339
from conveyor.store.keys import Keys

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

    async def _now_ms(self) -> int:
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000


def worker_json(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A worker's heartbeat hash (every value a string) in the types the API shows; a
    missing or garbled field is None rather than an error."""
    queues = raw.get("queues")
    return {
        "id": raw["id"],
        "host": raw.get("host"),
        "pid": _int(raw.get("pid")),
        "queues": [q for q in queues.split(",") if q] if isinstance(queues, str) else [],
        "concurrency": _int(raw.get("concurrency")),
        "in_flight": _int(raw.get("in_flight")),
        "processed": _int(raw.get("processed")),
        "failed": _int(raw.get("failed")),
        "started_at": _time(raw.get("started_at")),
        "last_seen": _time(raw.get("last_seen")),
    }


def _int(value: object) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _time(value: object) -> str | None:
    ms = _int(value)
    if ms is None and isinstance(value, str):  # written as a float by some writer
        try:
            ms = int(float(value))
        except ValueError:
            return None
    return None if ms is None or ms < 0 else ms_to_rfc3339(ms)
