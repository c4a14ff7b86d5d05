"""Worker concurrency asked for while workers run (ADR 16): per worker, or for every worker
of a queue.

- Per worker: field ``desired_concurrency`` of its heartbeat hash
  (``<prefix>:worker:<id>``), written by set_concurrency.lua only while the worker is
  live; it goes when the hash expires.
- Per queue: field ``<queue>`` of the hash ``<prefix>:concurrency``, kept until cleared.

A worker reads both in one round trip every second (worker/resize.py): its own value
wins, else the value of its first queue (in its configured order) that has one, else the
concurrency it started with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from conveyor.store.keys import Keys
from conveyor.store.scripts import scripts

WORKER_FIELD = "desired_concurrency"


class ConcurrencyStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def set_worker(self, worker_id: str, concurrency: int | None) -> bool:
        """Ask worker `worker_id` for `concurrency` (None: clear); False when it is not
        live (nothing written)."""
        value = "" if concurrency is None else concurrency
        done = await scripts().set_concurrency(self.redis, [self.keys.worker(worker_id)], [value])
        return bool(int(done))

    async def set_queue(self, queue: str, concurrency: int | None) -> None:
        """Ask every worker of `queue` for `concurrency` (None: clear)."""
        if concurrency is None:
            await self.redis.hdel(self.keys.concurrency, queue)
        else:
            await self.redis.hset(self.keys.concurrency, queue, concurrency)

    async def desired(self, worker_id: str, queues: Sequence[str]) -> int | None:
        """What worker `worker_id` is asked to run at once (None: nothing asked)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(self.keys.worker(worker_id), WORKER_FIELD)
            pipe.hmget(self.keys.concurrency, list(queues))
            own, per_queue = await pipe.execute()
        if (n := _count(own)) is not None:
            return n
        return next((n for v in per_queue if (n := _count(v)) is not None), None)


def _count(value: Any) -> int | None:
    """A stored concurrency, None when absent or not a positive integer."""
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else str(value)
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None
