"""The job endpoints against a real Redis: create, read, cancel, retry, list."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from redis.asyncio import Redis

from conveyor import codec
from conveyor.ids import job_id_time_ms, new_job_id
from conveyor.store.consumer import AttemptLimits, Completion, ConsumerStore
from conveyor.store.keys import Keys
from tests.api.conftest import assert_problem, error_fields
from tests.helpers import seed
from tests.helpers.http import JSON

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
    response = await client.delete(f"/jobs/{job['id']}", headers=JSON)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == job["id"]
    assert body["status"] == "canceled"
    assert body["finished_at"] is not None
    assert (await client.get(f"/jobs/{job['id']}")).json()["status"] == "canceled"


async def test_cancel_scheduled_job_is_200(client: httpx.AsyncClient) -> None:
    job = await create(client, type="noop", delay_seconds=600)
    response = await client.delete(f"/jobs/{job['id']}", headers=JSON)
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"


async def test_cancel_canceled_job_is_409(client: httpx.AsyncClient) -> None:
    job = await create(client, type="noop")
    assert (await client.delete(f"/jobs/{job['id']}", headers=JSON)).status_code == 200
    response = await client.delete(f"/jobs/{job['id']}", headers=JSON)
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
    response = await client.delete(f"/jobs/{job['id']}", headers=JSON)
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

    response = await client.delete(f"/jobs/{job['id']}", headers=JSON)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "running"
    assert body["cancel_requested"] is True
    assert body["worker"] == "test-worker"


async def test_cancel_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.delete(f"/jobs/{new_job_id()}", headers=JSON), 404)


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
    assert (await client.delete(f"/jobs/{d['id']}", headers=JSON)).status_code == 200

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


# -- retry ----------------------------------------------------------------------------------


async def failed_job(client: httpx.AsyncClient, r: Redis, keys: Keys, queue: str) -> str:
    """A job that ran once and failed for good."""
    job = await create(client, type="flaky", queue=queue, max_attempts=1)
    store = seed.consumer_store(r, keys)
    claimed = await seed.claim_one(store, queue)
    assert claimed.job_id == job["id"]
    await seed.fail(store, claimed, error="ValueError: nope", retryable=False)
    assert (await client.get(f"/jobs/{job['id']}")).json()["status"] == "failed"
    return str(job["id"])


async def test_retry_failed_job_is_200_pending_again(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    job_id = await failed_job(client, r, keys, "rq")
    before = (await client.get(f"/jobs/{job_id}")).json()
    response = await client.post(f"/jobs/{job_id}/retry", headers=JSON)
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["id"] == job_id
    assert job["status"] == "pending"
    assert job["attempts"] == 0
    assert job["last_error"] == before["last_error"]
    assert job["history"] == before["history"]
    assert (await client.get(f"/jobs/{job_id}")).json() == job
    # It runs again: a worker can take it.
    assert await claim_all(consumer(r, keys), "rq") == [job_id]


async def test_retry_canceled_job_is_200(client: httpx.AsyncClient) -> None:
    job = await create(client, type="noop")
    assert (await client.delete(f"/jobs/{job['id']}", headers=JSON)).status_code == 200
    response = await client.post(f"/jobs/{job['id']}/retry", headers=JSON)
    assert response.status_code == 200
    assert response.json()["status"] == "pending"


@pytest.mark.parametrize("state", ["pending", "scheduled", "running", "completed"])
async def test_retry_is_409_unless_failed_or_canceled(
    client: httpx.AsyncClient, r: Redis, keys: Keys, state: str
) -> None:
    job = await create(
        client, type="noop", queue="q409", delay_seconds=600 if state == "scheduled" else 0
    )
    if state in ("running", "completed"):
        store = seed.consumer_store(r, keys)
        claimed = await seed.claim_one(store, "q409")
        if state == "completed":
            await seed.complete(store, claimed)
    response = await client.post(f"/jobs/{job['id']}/retry", headers=JSON)
    problem = assert_problem(response, 409)
    assert problem["type"] == "urn:conveyor:problem:invalid-transition"
    assert problem["job_status"] == state
    assert (await client.get(f"/jobs/{job['id']}")).json()["status"] == state


async def test_retry_unknown_or_malformed_id_is_404(client: httpx.AsyncClient) -> None:
    await create(client, type="noop")
    assert_problem(await client.post(f"/jobs/{new_job_id()}/retry", headers=JSON), 404)
    assert_problem(await client.post("/jobs/*/retry", headers=JSON), 404)
    assert_problem(await client.post("/jobs/..%2Fx/retry", headers=JSON), 404)


async def test_retry_takes_only_post(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/jobs/{new_job_id()}/retry")
    assert_problem(response, 405)
    assert response.headers["allow"] == "POST"


# -- creation-time filters ------------------------------------------------------------------


def at(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


async def test_list_filters_by_creation_time(client: httpx.AsyncClient) -> None:
    jobs = []
    for _ in range(3):
        jobs.append(await create(client, type="timed"))
        await asyncio.sleep(0.005)  # distinct milliseconds
    times = [job_id_time_ms(str(j["id"])) for j in jobs]
    ids = [j["id"] for j in jobs]

    async def listed(**params: str) -> list[str]:
        response = await client.get("/jobs", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await listed(created_after=at(times[1])) == [ids[2], ids[1]]
    assert await listed(created_before=at(times[1])) == [ids[1], ids[0]]
    assert await listed(created_after=at(times[1]), created_before=at(times[1])) == [ids[1]]
    assert await listed(created_after=at(times[2] + 1)) == []
    assert await listed(created_before=at(times[0] - 1)) == []
    # Any offset names the same instant.
    plus_two = datetime.fromtimestamp(times[1] / 1000, timezone(timedelta(hours=2)))
    assert await listed(created_after=plus_two.isoformat(timespec="milliseconds")) == ids[:0:-1]
    # Bounds beyond what a job id can carry are clamped, not errors.
    assert await listed(created_after="1900-01-01T00:00:00Z") == ids[::-1]
    assert await listed(created_before="1900-01-01T00:00:00Z") == []
    assert await listed(created_before="9999-12-31T23:59:59Z") == ids[::-1]


@pytest.mark.parametrize(
    "query",
    [
        "created_after=2024-01-01",
        "created_after=2024-01-01T00:00:00",
        "created_before=yesterday",
        "created_before=",
        "created_after=2024-01-01T00:00:00Z&created_after=2024-01-02T00:00:00Z",
    ],
)
async def test_bad_creation_time_is_422(client: httpx.AsyncClient, query: str) -> None:
    problem = assert_problem(await client.get(f"/jobs?{query}"), 422)
    assert error_fields(problem) == {query.split("=")[0]}


async def test_a_job_shows_its_effective_max_attempts_once_claimed(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    """null before a worker starts it (no limit is known yet); then the limit the worker
    judges it by, recorded by the claim. A job's own value shows throughout."""
    unset = await create(client, type="report.build", queue="limits")
    own = await create(client, type="report.build", queue="limits", max_attempts=4)
    assert (unset["max_attempts"], own["max_attempts"]) == (None, 4)
    assert (await client.get(f"/jobs/{unset['id']}")).json()["max_attempts"] is None

    store = ConsumerStore(
        r,
        keys,
        "limits-worker",
        max_deliveries=5,
        result_ttl_seconds=600,
        attempt_limits=AttemptLimits(default=6, by_type={"report.build": 2}),
    )
    assert set(await claim_all(store, "limits")) == {unset["id"], own["id"]}

    shown = [(await client.get(f"/jobs/{j['id']}")).json() for j in (unset, own)]
    assert [(j["status"], j["max_attempts"]) for j in shown] == [("running", 2), ("running", 4)]
