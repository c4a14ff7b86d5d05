"""WorkerRegistry: heartbeats, who is live, removal, and forgetting workers that stopped."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from conveyor.store.keys import Keys
from conveyor.store.workers import STALE_AFTER_BEATS, WorkerRegistry
from tests.helpers import seed

pytestmark = pytest.mark.anyio

INFO: dict[str, str | int | float] = {
    "host": "h1",
    "pid": 42,
    "queues": "default,mail",
    "concurrency": 8,
    "load": 0.5,
}


@pytest.fixture
def registry(r: Redis, keys: Keys) -> WorkerRegistry:
    return WorkerRegistry(r, keys)


async def test_a_heartbeat_writes_the_worker_hash_and_its_score(
    r: Redis, keys: Keys, registry: WorkerRegistry
) -> None:
    before = await seed.redis_now_ms(r)
    await registry.beat("w1", INFO, interval_s=2.0)
    after = await seed.redis_now_ms(r)

    raw: Any = await r.hgetall(keys.worker("w1"))
    assert {k.decode(): v.decode() for k, v in raw.items() if k != b"last_seen"} == {
        "host": "h1",
        "pid": "42",
        "queues": "default,mail",
        "concurrency": "8",
        "load": "0.5",
    }
    last_seen = int(raw[b"last_seen"])
    assert before <= last_seen <= after
    assert await r.zscore(keys.workers, "w1") == last_seen
    ttl = await r.pttl(keys.worker("w1"))
    assert 2000 * STALE_AFTER_BEATS - 1000 < ttl <= 2000 * STALE_AFTER_BEATS


async def test_live_lists_workers_with_their_fields(registry: WorkerRegistry) -> None:
    await registry.beat("w1", INFO, interval_s=5)
    await registry.beat("w2", {**INFO, "host": "h2"}, interval_s=5)
    live = await registry.live()
    assert [w["id"] for w in live] == ["w1", "w2"]
    assert [w["host"] for w in live] == ["h1", "h2"]
    assert all("last_seen" in w for w in live)


async def test_a_second_beat_refreshes_fields_and_score(
    r: Redis, keys: Keys, registry: WorkerRegistry
) -> None:
    await registry.beat("w1", {**INFO, "in_flight": 1}, interval_s=5)
    first = await r.zscore(keys.workers, "w1")
    await registry.beat("w1", {**INFO, "in_flight": 3}, interval_s=5)
    assert await r.hget(keys.worker("w1"), "in_flight") == b"3"
    second = await r.zscore(keys.workers, "w1")
    assert first is not None
    assert second is not None
    assert second >= first


async def test_remove_forgets_the_worker(r: Redis, keys: Keys, registry: WorkerRegistry) -> None:
    await registry.beat("w1", INFO, interval_s=5)
    await registry.beat("w2", INFO, interval_s=5)
    await registry.remove("w1")
    assert await r.exists(keys.worker("w1")) == 0
    assert await r.zscore(keys.workers, "w1") is None
    assert [w["id"] for w in await registry.live()] == ["w2"]


async def test_a_worker_whose_hash_expired_is_not_live(
    r: Redis, keys: Keys, registry: WorkerRegistry
) -> None:
    await registry.beat("w1", INFO, interval_s=5)
    await registry.beat("gone", INFO, interval_s=5)
    await r.delete(keys.worker("gone"))  # its heartbeats stopped and the hash expired
    assert [w["id"] for w in await registry.live()] == ["w1"]


async def test_a_beat_drops_workers_silent_for_longer_than_the_stale_window(
    r: Redis, keys: Keys, registry: WorkerRegistry
) -> None:
    now = await seed.redis_now_ms(r)
    window = 1000 * STALE_AFTER_BEATS
    await r.zadd(keys.workers, {"old": now - window - 5_000, "recent": now - window + 5_000})
    await registry.beat("w1", INFO, interval_s=1.0)
    found: Any = await r.zrange(keys.workers, 0, -1)
    members = {m.decode() for m in found}
    assert members == {"recent", "w1"}
