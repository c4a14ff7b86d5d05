"""GET /readyz: ready when Redis answers, with the live workers, each queue's backlog and
consumers (from the queue statistics the process last read), and a warning for each queue
whose jobs wait with no live worker for it; not ready when Redis's settings let it drop jobs
(eviction). Its Redis work is the same with 1 queue or 2,000."""

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
from conveyor.api.routes.health import READY_MAX_WORKERS
from conveyor.config import Settings
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


@pytest.fixture
def settings(redis_url: str, prefix: str) -> Settings:
    """No statistics cache: each GET /queues reads Redis, so the tests control freshness."""
    return make_settings(redis_url, prefix, stats_cache_seconds=0, api_auth="none")


async def ready(client: httpx.AsyncClient, *, read_queues: bool = True) -> dict[str, Any]:
    """The 200 body, without the AOF warning the suite's Redis (no AOF) always causes, and
    without `queues_age_seconds`. With `read_queues`, GET /queues reads the statistics first
    (/readyz shows the last ones read and never reads them itself)."""
    if read_queues:
        assert (await client.get("/queues")).status_code == 200
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["warnings"][-1] == AOF_OFF
    body["warnings"].remove(AOF_OFF)
    age = body.pop("queues_age_seconds")
    if read_queues:
        assert age is not None
        assert 0 <= age < 60
    return body


async def test_nothing_there_yet(client: httpx.AsyncClient) -> None:
    assert await ready(client) == {
        "status": "ready",
        "workers": [],
        "workers_total": 0,
        "queues": [],
        "warnings": [],
    }


async def test_queues_are_those_last_read_never_read_by_the_probe(
    client: httpx.AsyncClient,
) -> None:
    """Before any GET /queues or /metrics the probe knows no queue (and says since when
    it knows: never); afterwards it shows what that read saw, with its age."""
    await enqueue(client, "alpha", 2)
    response = await client.get("/readyz")
    body = response.json()
    assert (body["queues"], body["queues_age_seconds"]) == ([], None)
    await client.get("/metrics")
    body = (await client.get("/readyz")).json()
    assert body["queues"] == [{"name": "alpha", "waiting": 2, "consumers": 0, "live_workers": 0}]
    assert 0 <= body["queues_age_seconds"] < 60


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
    assert body["workers_total"] == 2
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


async def total_calls(r: Redis) -> int:
    """Commands the test's redis-server has run (INFO commandstats), this INFO excluded."""
    stats: dict[str, Any] = await r.info("commandstats")
    return sum(int(v["calls"]) for v in stats.values()) - int(
        stats.get("cmdstat_info", {}).get("calls", 0)
    )


async def readyz_cost(client: httpx.AsyncClient, r: Redis, round_trips: list[int]) -> int:
    """The commands one /readyz makes Redis run; its round trips go to `round_trips`."""
    before = await total_calls(r)
    round_trips.clear()
    await ready(client, read_queues=False)
    sent = len(round_trips)
    commands = await total_calls(r) - before
    round_trips[:] = [1] * sent
    return commands


async def test_the_cost_does_not_grow_with_queues_or_workers(
    client: httpx.AsyncClient, r: Redis, keys: Keys, round_trips: list[int]
) -> None:
    """The same commands and round trips with 1 queue as with 2,000 queues (their
    statistics read); one more command per worker, up to READY_MAX_WORKERS."""
    await enqueue(client, "q0", 1)
    await beat(r, keys, "w0", "q0")
    await ready(client)
    await ready(client)  # connections are open from here on
    one_queue = await readyz_cost(client, r, round_trips)
    few = len(round_trips)

    await r.sadd(keys.queues, *(f"q{i}" for i in range(1, 2000)))
    assert (await client.get("/queues")).json()["total"] == 2000
    many_queues = await readyz_cost(client, r, round_trips)
    assert many_queues == one_queue == 4  # CONFIG GET, ZCARD, ZREVRANGE, one HGETALL
    assert len(round_trips) == few <= 3
    body = await ready(client, read_queues=False)
    assert len(body["queues"]) == 1000  # the first max_queues by name: what the cache holds

    for i in range(1, 30):
        await beat(r, keys, f"w{i}", f"q{i}")
    assert await readyz_cost(client, r, round_trips) == one_queue + 29
    assert len(round_trips) == few
    body = await ready(client, read_queues=False)
    assert len(body["workers"]) == body["workers_total"] == 30


async def test_at_most_a_bounded_number_of_workers_is_read(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    for i in range(READY_MAX_WORKERS + 20):
        await beat(r, keys, f"w{i:03d}", "q")
    body = await ready(client, read_queues=False)
    assert len(body["workers"]) == READY_MAX_WORKERS
    assert body["workers_total"] == READY_MAX_WORKERS + 20


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
