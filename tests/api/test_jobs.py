"""The job endpoints against a real Redis: create, read, cancel, list."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from redis.asyncio import Redis

from shared import codec
from shared.ids import new_job_id
from shared.store.consumer import Completion, ConsumerStore
from shared.store.keys import Keys
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.anyio

KeyCount = Callable[[], Awaitable[int]]


async def create(client: httpx.AsyncClient, **body: object) -> dict[str, object]:
    response = await client.post("/jobs", json=body)
    assert response.status_code == 201, response.text
    job = response.json()
    assert isinstance(job, dict)
    return job


def consumer(r: Redis, keys: Keys) -> ConsumerStore:
    return ConsumerStore(r, keys, "test-worker", max_deliveries=5, result_ttl_seconds=600)


async def claim_all(store: ConsumerStore, queue: str) -> list[str]:
    await store.ensure_groups([queue])
    deliveries = await store.read([queue], count=100, block_ms=10)
    result = await store.claim(deliveries)
    return [c.job_id for c in result.run]


async def test_create_returns_201_location_and_the_job(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/jobs",
        json={
            "type": "email.send",
            "payload": {"to": "a@example.com", "n": [1, 2.5, None, True]},
            "queue": "mail",
            "max_attempts": 5,
            "timeout_seconds": 12.5,
        },
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert len(job["id"]) == 26
    assert job["type"] == "email.send"
    assert job["queue"] == "mail"
    assert job["status"] == "pending"
    assert job["payload"] == {"to": "a@example.com", "n": [1, 2.5, None, True]}
    assert job["max_attempts"] == 5
    assert job["timeout_seconds"] == 12.5
    assert job["attempts"] == 0
    assert job["cancel_requested"] is False
    assert job["created_at"].endswith("Z")

    fetched = await client.get(response.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == job


async def test_defaults_queue_payload_and_limits(client: httpx.AsyncClient) -> None:
    job = await create(client, type="noop")
    assert job["queue"] == "default"
    assert job["payload"] is None
    assert job["max_attempts"] is None
    assert job["timeout_seconds"] is None
    assert job["run_at"] is None
    assert job["status"] == "pending"


async def test_null_optional_fields_mean_not_given(client: httpx.AsyncClient) -> None:
    job = await create(
        client,
        type="noop",
        queue=None,
        max_attempts=None,
        delay_seconds=None,
        run_at=None,
        timeout_seconds=None,
    )
    assert job["queue"] == "default"
    assert job["status"] == "pending"


async def test_charset_parameter_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/jobs",
        content=b'{"type": "noop"}',
        headers={"content-type": "Application/JSON; charset=UTF-8"},
    )
    assert response.status_code == 201


async def test_delay_seconds_schedules_the_job(client: httpx.AsyncClient) -> None:
    before = datetime.now(UTC)
    job = await create(client, type="later", delay_seconds=3600)
    assert job["status"] == "scheduled"
    run_at = datetime.fromisoformat(str(job["run_at"]))
    assert before + timedelta(seconds=3590) < run_at < before + timedelta(seconds=3610)


async def test_zero_delay_is_pending(client: httpx.AsyncClient) -> None:
    job = await create(client, type="now", delay_seconds=0)
    assert job["status"] == "pending"


async def test_run_at_schedules_the_job(client: httpx.AsyncClient) -> None:
    job = await create(client, type="later", run_at="2099-06-01T12:30:00.250+02:00")
    assert job["status"] == "scheduled"
    assert job["run_at"] == "2099-06-01T10:30:00.250Z"


async def test_run_at_in_the_past_runs_now(client: httpx.AsyncClient) -> None:
    job = await create(client, type="late", run_at="2001-01-01T00:00:00Z")
    assert job["status"] == "pending"


async def test_get_unknown_job_is_404(client: httpx.AsyncClient, key_count: KeyCount) -> None:
    await create(client, type="noop")  # a queue exists, so the lookup probes something
    before = await key_count()
    response = await client.get(f"/jobs/{new_job_id()}")
    body = assert_problem(response, 404)
    assert body["type"] == "urn:conveyor:problem:job-not-found"
    assert await key_count() == before


async def test_cancel_pending_job_is_200(client: httpx.AsyncClient) -> None:
    job = await create(client, type="noop")
    response = await client.delete(f"/jobs/{job['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == job["id"]
    assert body["status"] == "canceled"
    assert body["finished_at"] is not None
    assert (await client.get(f"/jobs/{job['id']}")).json()["status"] == "canceled"


async def test_cancel_scheduled_job_is_200(client: httpx.AsyncClient) -> None:
    job = await create(client, type="noop", delay_seconds=600)
    response = await client.delete(f"/jobs/{job['id']}")
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"


async def test_cancel_canceled_job_is_409(client: httpx.AsyncClient) -> None:
    job = await create(client, type="noop")
    assert (await client.delete(f"/jobs/{job['id']}")).status_code == 200
    response = await client.delete(f"/jobs/{job['id']}")
    body = assert_problem(response, 409)
    assert body["job_status"] == "canceled"
    assert "canceled" in str(body["detail"])


async def test_cancel_completed_job_is_409(client: httpx.AsyncClient, r: Redis, keys: Keys) -> None:
    job = await create(client, type="noop", queue="done")
    store = consumer(r, keys)
    await store.ensure_groups(["done"])
    claimed = await store.claim(await store.read(["done"], count=10, block_ms=10))
    [running] = claimed.run
    await store.finish(
        completions=[Completion(running, codec.encode({"ok": True}))],
        schedule_channel=keys.schedule_channel,
    )
    response = await client.delete(f"/jobs/{job['id']}")
    body = assert_problem(response, 409)
    assert body["type"] == "urn:conveyor:problem:invalid-transition"
    assert body["job_status"] == "completed"
    assert "completed" in str(body["detail"])
    fetched = (await client.get(f"/jobs/{job['id']}")).json()
    assert fetched["status"] == "completed"
    assert fetched["result"] == {"ok": True}


async def test_cancel_running_job_is_202_with_cancel_requested(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    job = await create(client, type="slow", queue="busy")
    assert await claim_all(consumer(r, keys), "busy") == [job["id"]]
    assert (await client.get(f"/jobs/{job['id']}")).json()["status"] == "running"

    response = await client.delete(f"/jobs/{job['id']}")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "running"
    assert body["cancel_requested"] is True
    assert body["worker"] == "test-worker"


async def test_cancel_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.delete(f"/jobs/{new_job_id()}"), 404)


async def test_list_is_newest_first_and_paginates(client: httpx.AsyncClient) -> None:
    created = [await create(client, type="page", payload=i) for i in range(5)]
    newest_first = [j["id"] for j in reversed(created)]

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/jobs", params=params)
        assert response.status_code == 200
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == 2
        assert cursor == page["items"][-1]["id"]
    assert seen == newest_first
    assert pages == 3


async def test_list_default_page_and_empty_store(client: httpx.AsyncClient) -> None:
    response = await client.get("/jobs")
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


async def test_list_filters_by_status_type_and_queue(client: httpx.AsyncClient) -> None:
    a = await create(client, type="alpha", queue="q1")
    b = await create(client, type="beta", queue="q1")
    c = await create(client, type="alpha", queue="q2", delay_seconds=600)
    d = await create(client, type="alpha", queue="q2")
    assert (await client.delete(f"/jobs/{d['id']}")).status_code == 200

    async def ids(query: str) -> list[str]:
        response = await client.get(f"/jobs?{query}")
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await ids("type=alpha") == [d["id"], c["id"], a["id"]]
    assert await ids("queue=q1") == [b["id"], a["id"]]
    assert await ids("status=pending") == [b["id"], a["id"]]
    assert await ids("status=scheduled,canceled") == [d["id"], c["id"]]
    assert await ids("status=scheduled&status=canceled") == [d["id"], c["id"]]
    assert await ids("status=pending&type=alpha&queue=q1") == [a["id"]]
    assert await ids("queue=nothing-here") == []
