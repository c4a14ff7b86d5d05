"""GET /queues, /queues/{name} and /workers against data seeded through the real stores."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest
from redis.asyncio import Redis

from conveyor.ids import ms_to_rfc3339
from conveyor.store.keys import Keys
from conveyor.store.workers import WorkerRegistry
from tests.api.conftest import assert_problem
from tests.helpers import seed
from tests.helpers.http import JSON

pytestmark = pytest.mark.anyio


async def seed_alpha(client: httpx.AsyncClient, r: Redis, keys: Keys) -> None:
    """Queue alpha: 2 waiting, 1 running, 1 scheduled, 1 retrying, 1 failed, 1 completed,
    1 canceled, one consumer."""
    created = await client.post(
        "/jobs/batch",
        json={"jobs": [{"type": "t", "queue": "alpha", "payload": i} for i in range(7)]},
    )
    assert created.status_code == 201
    ids = [job["id"] for job in created.json()["jobs"]]
    later = await client.post("/jobs", json={"type": "t", "queue": "alpha", "delay_seconds": 600})
    assert later.status_code == 201

    store = seed.consumer_store(r, keys, "c1")
    claimed = await seed.claim_all(store, "alpha", count=4)
    assert [c.job_id for c in claimed] == ids[:4]
    await seed.complete(store, claimed[0])
    await seed.fail(store, claimed[1], retryable=False)
    await seed.fail(store, claimed[2], retryable=True, delay_ms=600_000, max_attempts=3)
    assert (await client.delete(f"/jobs/{ids[6]}", headers=JSON)).status_code == 200


ALPHA = {
    "name": "alpha",
    "waiting": 2,
    "pending_in_group": 1,
    "running": 1,
    "scheduled": 1,
    "retrying": 1,
    "failed": 1,
    "completed": 1,
    "canceled": 1,
    "consumers": 1,
    "expired": 0,
    "paused": False,
}
BETA = {
    "name": "beta",
    "waiting": 0,
    "pending_in_group": 0,
    "running": 0,
    "scheduled": 1,
    "retrying": 0,
    "failed": 0,
    "completed": 0,
    "canceled": 0,
    "consumers": 0,
    "expired": 0,
    "paused": False,
    "oldest_waiting_age_seconds": None,
}


async def test_queues_count_every_state(client: httpx.AsyncClient, r: Redis, keys: Keys) -> None:
    later = await client.post("/jobs", json={"type": "t", "queue": "beta", "delay_seconds": 600})
    assert later.status_code == 201
    await seed_alpha(client, r, keys)

    response = await client.get("/queues")
    assert response.status_code == 200
    items = response.json()["items"]
    assert [q["name"] for q in items] == ["alpha", "beta"]
    alpha, beta = items
    age = alpha.pop("oldest_waiting_age_seconds")
    assert isinstance(age, float)
    assert 0 <= age < 60
    assert alpha == ALPHA
    assert beta == BETA

    one = await client.get("/queues/alpha")
    assert one.status_code == 200
    body = one.json()
    assert body.pop("oldest_waiting_age_seconds") >= age
    assert body == ALPHA
    assert (await client.get("/queues/beta")).json() == BETA


async def test_queues_are_sorted_by_name(client: httpx.AsyncClient) -> None:
    for name in ["zulu", "alpha", "Mike", "bravo-2"]:
        assert (await client.post("/jobs", json={"type": "t", "queue": name})).status_code == 201
    response = await client.get("/queues")
    assert [q["name"] for q in response.json()["items"]] == ["Mike", "alpha", "bravo-2", "zulu"]
    assert all(q["waiting"] == 1 for q in response.json()["items"])


async def test_no_queue_yet(client: httpx.AsyncClient) -> None:
    response = await client.get("/queues")
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None, "total": 0}


async def test_unknown_queue_is_404(client: httpx.AsyncClient) -> None:
    await client.post("/jobs", json={"type": "t"})
    problem = assert_problem(await client.get("/queues/nothing-here"), 404)
    assert problem["type"] == "urn:conveyor:problem:queue-not-found"


@pytest.mark.parametrize("name", ["a:b", "%7Bdefault%7D", "*", "q" * 65, "a%20b", "%00"])
async def test_invalid_queue_name_is_404(client: httpx.AsyncClient, name: str) -> None:
    problem = assert_problem(await client.get(f"/queues/{name}"), 404)
    assert problem["type"] == "urn:conveyor:problem:queue-not-found"


async def test_queues_take_only_get(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post("/queues", json={}), 405)
    assert_problem(await client.delete("/queues/default", headers=JSON), 405)
    assert_problem(await client.post("/workers", json={}), 405)


# -- workers --------------------------------------------------------------------------------


def info(pid: int, queues: str, **counts: int) -> dict[str, str | int | float]:
    return {
        "host": "box-1",
        "pid": pid,
        "queues": queues,
        "concurrency": counts.get("concurrency", 10),
        "in_flight": counts.get("in_flight", 0),
        "processed": counts.get("processed", 0),
        "failed": counts.get("failed", 0),
        "started_at": 1_700_000_000_123,
    }


async def test_workers_in_their_json_types(client: httpx.AsyncClient, r: Redis, keys: Keys) -> None:
    registry = WorkerRegistry(r, keys)
    await registry.beat("w-b", info(42, "mail,default", in_flight=3, processed=17, failed=2), 5)
    await registry.beat("w-a", info(7, "default", concurrency=1), 5)
    await registry.beat("w-gone", info(9, "default"), 5)
    await registry.remove("w-gone")
    now_ms = await seed.redis_now_ms(r)

    response = await client.get("/workers")
    assert response.status_code == 200
    items = response.json()["items"]
    assert [w["id"] for w in items] == ["w-a", "w-b"]
    b = items[1]
    last_seen = b.pop("last_seen")
    assert b == {
        "id": "w-b",
        "host": "box-1",
        "pid": 42,
        "queues": ["mail", "default"],
        "concurrency": 10,
        "in_flight": 3,
        "processed": 17,
        "failed": 2,
        "started_at": ms_to_rfc3339(1_700_000_000_123),
        "stale": False,  # beat just now
    }
    assert b["started_at"] == "2023-11-14T22:13:20.123Z"
    seen = datetime.fromisoformat(last_seen).timestamp() * 1000
    assert now_ms - 5000 < seen <= now_ms
    assert items[0]["queues"] == ["default"]
    assert items[0]["concurrency"] == 1


async def test_no_workers(client: httpx.AsyncClient) -> None:
    response = await client.get("/workers")
    assert response.status_code == 200
    assert response.json() == {"items": []}


async def test_worker_with_odd_fields_does_not_break_the_list(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    """A heartbeat from another version (fields missing or not numbers) shows as nulls."""
    await WorkerRegistry(r, keys).beat("w-odd", {"host": "h", "pid": "abc", "queues": ""}, 5)
    [worker] = (await client.get("/workers")).json()["items"]
    assert worker["pid"] is None
    assert worker["queues"] == []
    assert worker["concurrency"] is None
    assert worker["started_at"] is None
    assert worker["last_seen"] is not None
