"""GET /readyz: ready when Redis answers, with the live workers, each queue's backlog and
consumers, and a warning for each queue whose jobs wait with no live worker for it; not
ready when Redis's settings let it drop jobs (eviction)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

from conveyor.api.app import create_app
from conveyor.ids import ms_to_rfc3339
from conveyor.store.keys import Keys
from conveyor.store.workers import WorkerRegistry
from tests.api.conftest import app_client, assert_problem, make_settings
from tests.helpers import seed
from tests.helpers.redis_server import RedisServer, free_port

pytestmark = pytest.mark.anyio


async def beat(r: Redis, keys: Keys, worker_id: str, queues: str, interval_s: float = 60) -> None:
    info: dict[str, str | int | float] = {
        "host": "box-1",
        "pid": 4242,
        "queues": queues,
        "concurrency": 8,
        "in_flight": 3,
        "processed": 10,
        "failed": 1,
        "started_at": 1_700_000_000_000,
    }
    await WorkerRegistry(r, keys).beat(worker_id, info, interval_s)


async def enqueue(client: httpx.AsyncClient, queue: str, n: int, **extra: Any) -> None:
    response = await client.post(
        "/jobs/batch", json={"jobs": [{"type": "t", "queue": queue, **extra}] * n}
    )
    assert response.status_code == 201, response.text


AOF_OFF = "appendonly is off: a Redis restart loses jobs"


async def ready(client: httpx.AsyncClient) -> dict[str, Any]:
    """The 200 body, without the AOF warning the suite's Redis (no AOF) always causes."""
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["warnings"][-1] == AOF_OFF
    body["warnings"].remove(AOF_OFF)
    return body


async def test_nothing_there_yet(client: httpx.AsyncClient) -> None:
    assert await ready(client) == {"status": "ready", "workers": [], "queues": [], "warnings": []}


async def test_workers_queues_and_warnings(client: httpx.AsyncClient, r: Redis, keys: Keys) -> None:
    await beat(r, keys, "w2", "alpha")
    await beat(r, keys, "w1", "alpha,beta")
    await enqueue(client, "alpha", 2)
    await enqueue(client, "beta", 1, delay_seconds=600)  # scheduled: nothing waits
    await enqueue(client, "gamma", 3)
    await enqueue(client, "delta", 2)
    # A consumer read delta once (the group knows it), but no live worker lists delta.
    await seed.deliver(seed.consumer_store(r, keys, "gone"), "delta", 1)

    body = await ready(client)

    assert body["status"] == "ready"
    [w1, w2] = body["workers"]
    last_seen = w1.pop("last_seen")
    assert isinstance(last_seen, str)
    now = ms_to_rfc3339(await seed.redis_now_ms(r))
    assert now is not None
    assert last_seen <= now
    assert w1 == {
        "id": "w1",
        "host": "box-1",
        "pid": 4242,
        "queues": ["alpha", "beta"],
        "concurrency": 8,
        "in_flight": 3,
    }
    assert (w2["id"], w2["queues"]) == ("w2", ["alpha"])
    assert body["queues"] == [
        {"name": "alpha", "waiting": 2, "consumers": 0, "live_workers": 2},
        {"name": "beta", "waiting": 0, "consumers": 0, "live_workers": 1},
        {"name": "delta", "waiting": 1, "consumers": 1, "live_workers": 0},
        {"name": "gamma", "waiting": 3, "consumers": 0, "live_workers": 0},
    ]
    assert body["warnings"] == [
        "queue 'delta' has 1 waiting job and no live worker consumes it",
        "queue 'gamma' has 3 waiting jobs and no live worker consumes it",
    ]


async def test_a_worker_whose_heartbeats_stopped_no_longer_counts(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    await enqueue(client, "alpha", 1)
    await beat(r, keys, "w1", "alpha", interval_s=0.02)  # its hash expires after 60 ms
    await asyncio.sleep(0.2)

    body = await ready(client)

    assert body["workers"] == []
    assert body["queues"] == [{"name": "alpha", "waiting": 1, "consumers": 0, "live_workers": 0}]
    assert body["warnings"] == ["queue 'alpha' has 1 waiting job and no live worker consumes it"]


async def test_a_queue_that_waits_for_nothing_is_not_flagged(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    """Jobs waiting for a live worker, and a live worker's idle queue: no warning."""
    await beat(r, keys, "w1", "alpha,idle")
    await enqueue(client, "alpha", 5)
    body = await ready(client)
    assert body["warnings"] == []
    assert body["queues"] == [{"name": "alpha", "waiting": 5, "consumers": 0, "live_workers": 1}]


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts what every Redis connection sends: one for a command or a whole pipeline."""
    sent: list[int] = []
    original = AbstractConnection.send_packed_command

    async def counting(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
        sent.append(1)
        await original(self, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent


async def test_the_cost_does_not_grow_with_queues_or_workers(
    client: httpx.AsyncClient, r: Redis, keys: Keys, round_trips: list[int]
) -> None:
    await enqueue(client, "q0", 1)
    await beat(r, keys, "w0", "q0")
    await ready(client)  # connections are open from here on
    round_trips.clear()
    await ready(client)
    few = len(round_trips)

    for i in range(1, 30):
        await enqueue(client, f"q{i}", 2)
        await beat(r, keys, f"w{i}", f"q{i}")
    round_trips.clear()
    body = await ready(client)

    assert len(body["queues"]) == 30
    assert len(body["workers"]) == 30
    assert len(round_trips) == few <= 6


@pytest.fixture
async def down_client(prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(f"redis://127.0.0.1:{free_port()}/0", prefix))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            yield c


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", appendonly=True)
    server.start()
    yield server
    server.kill()


async def test_an_evicting_redis_is_not_ready(private_redis: RedisServer, prefix: str) -> None:
    """Redis evicts keys under memory pressure: accepted jobs could vanish, so the API is
    not ready (503 naming the setting); fixed, it is ready with no warning."""
    settings = make_settings(private_redis.url, prefix)
    with redis.Redis(port=private_redis.port) as admin:
        admin.config_set("maxmemory-policy", "allkeys-lru")
        async with app_client(settings) as client:
            response = await client.get("/readyz")
            problem = assert_problem(response, 503)
            assert problem["type"] == "urn:conveyor:problem:redis-unsafe"
            assert "maxmemory-policy is allkeys-lru" in str(problem["detail"])
            assert response.headers["retry-after"] == "1"
            admin.config_set("maxmemory-policy", "noeviction")
            response = await client.get("/readyz")
            assert response.status_code == 200
            assert response.json()["warnings"] == []


async def test_not_ready_without_redis(down_client: httpx.AsyncClient) -> None:
    problem = assert_problem(await down_client.get("/readyz"), 503)
    assert problem["type"] == "urn:conveyor:problem:store-unavailable"
