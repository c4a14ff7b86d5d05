"""The worker's resize check against real Redis: what is asked (the worker's own value,
else its first queue's), bounded by max_concurrency, else the size it started with."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from conveyor.store.concurrency import ConcurrencyStore
from conveyor.store.keys import Keys
from conveyor.store.workers import WorkerRegistry
from conveyor.worker.resize import ConcurrencyWatcher

pytestmark = pytest.mark.anyio
WORKER = "host-2-abcdef"


async def watcher_sizes(r: Redis, keys: Keys) -> tuple[ConcurrencyWatcher, list[int]]:
    await WorkerRegistry(r, keys).beat(WORKER, {"concurrency": 4}, 30)
    applied: list[int] = []
    size = [4]

    async def apply(n: int) -> None:
        applied.append(n)
        size[0] = n

    watcher = ConcurrencyWatcher(
        ConcurrencyStore(r, keys),
        WORKER,
        ["high", "low"],
        configured=4,
        maximum=50,
        current=lambda: size[0],
        apply=apply,
    )
    return watcher, applied


async def test_own_value_then_queue_value_then_the_configured_size(r: Redis, keys: Keys) -> None:
    watcher, applied = await watcher_sizes(r, keys)
    store = ConcurrencyStore(r, keys)
    await watcher.check()
    assert applied == []  # nothing asked: stays at 4
    await store.set_queue("low", 6)
    await watcher.check()
    await store.set_queue("high", 8)
    await watcher.check()
    assert await store.set_worker(WORKER, 12)
    await watcher.check()
    await watcher.check()  # unchanged: not applied again
    assert await store.set_worker(WORKER, None)
    await store.set_queue("high", None)
    await store.set_queue("low", None)
    await watcher.check()
    assert applied == [6, 8, 12, 4]


async def test_sizes_applied_in_order_and_capped(r: Redis, keys: Keys) -> None:
    watcher, applied = await watcher_sizes(r, keys)
    store = ConcurrencyStore(r, keys)
    await store.set_queue("low", 6)
    await watcher.check()
    assert await store.set_worker(WORKER, 500)
    await watcher.check()
    assert await store.set_worker(WORKER, None)
    await watcher.check()
    await store.set_queue("low", None)
    await watcher.check()
    assert applied == [6, 50, 6, 4]


async def test_a_gone_worker_is_not_written(r: Redis, keys: Keys) -> None:
    assert not await ConcurrencyStore(r, keys).set_worker("gone-1-000000", 3)
    assert not await r.exists(keys.worker("gone-1-000000"))
