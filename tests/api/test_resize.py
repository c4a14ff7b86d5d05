"""`PUT /workers/{id}/concurrency` and `PUT /queues/{name}/concurrency`: what they write,
and the 404 and 422 that write nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from conveyor.store.concurrency import ConcurrencyStore
from conveyor.store.keys import Keys
from conveyor.store.workers import WorkerRegistry
from tests.api.conftest import error_fields

pytestmark = pytest.mark.anyio
WORKER = "host-1-abcdef"


@pytest.fixture
async def live_worker(r: Redis, keys: Keys) -> str:
    await WorkerRegistry(r, keys).beat(WORKER, {"queues": "default", "concurrency": 4}, 30)
    return WORKER


async def test_a_live_worker_is_asked_and_cleared(
    client: httpx.AsyncClient, r: Redis, keys: Keys, live_worker: str
) -> None:
    store = ConcurrencyStore(r, keys)
    response = await client.put(f"/workers/{live_worker}/concurrency", json={"concurrency": 9})
    assert response.status_code == 200
    assert response.json() == {"worker": live_worker, "concurrency": 9}
    assert await store.desired(live_worker, ["default"]) == 9
    whole = await client.put(f"/workers/{live_worker}/concurrency", json={"concurrency": 8.0})
    assert whole.json() == {"worker": live_worker, "concurrency": 8}
    cleared = await client.put(f"/workers/{live_worker}/concurrency", json={"concurrency": None})
    assert cleared.status_code == 200
    assert await store.desired(live_worker, ["default"]) is None


async def test_a_queue_is_asked_and_a_workers_own_value_wins(
    client: httpx.AsyncClient, r: Redis, keys: Keys, live_worker: str
) -> None:
    await r.sadd(keys.queues, "default")
    store = ConcurrencyStore(r, keys)
    response = await client.put("/queues/default/concurrency", json={"concurrency": 3})
    assert response.status_code == 200
    assert response.json() == {"queue": "default", "concurrency": 3}
    assert await store.desired(live_worker, ["other", "default"]) == 3
    await client.put(f"/workers/{live_worker}/concurrency", json={"concurrency": 7})
    assert await store.desired(live_worker, ["default"]) == 7


async def test_unknown_worker_or_queue_is_404_and_writes_nothing(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    gone = await client.put("/workers/gone-1-aaaaaa/concurrency", json={"concurrency": 2})
    assert gone.status_code == 404
    assert gone.json()["type"].endswith("worker-not-found")
    bad_id = await client.put("/workers/no%20such/concurrency", json={"concurrency": 2})
    assert bad_id.status_code == 404
    queue = await client.put("/queues/nosuch/concurrency", json={"concurrency": 2})
    assert queue.status_code == 404
    assert not await r.exists(keys.worker("gone-1-aaaaaa"), keys.concurrency)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"concurrency": 0}, {"concurrency"}),
        ({"concurrency": 1001}, {"concurrency"}),
        ({"concurrency": "4"}, {"concurrency"}),
        ({"concurrency": True}, {"concurrency"}),
        ({}, {"concurrency"}),
        ({"concurrency": 2, "size": 3}, {"size"}),
    ],
)
async def test_bad_bodies_are_422_naming_the_field(
    client: httpx.AsyncClient, r: Redis, keys: Keys, live_worker: str, body: Any, fields: set[str]
) -> None:
    response = await client.put(f"/workers/{live_worker}/concurrency", json=body)
    assert response.status_code == 422
    assert error_fields(response.json()) == fields
    assert await ConcurrencyStore(r, keys).desired(live_worker, ["default"]) is None
