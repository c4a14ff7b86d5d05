"""`POST /queues/{name}/pause` and `/resume`, and the expiry fields of a new job
(`expires_at`, `expire_after_seconds`) as the HTTP API takes and shows them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
from redis.asyncio import Redis

from conveyor.store.keys import Keys
from tests.api.conftest import assert_problem, error_fields
from tests.helpers import seed
from tests.helpers.http import JSON

pytestmark = pytest.mark.anyio
Q = "mail"


async def test_pause_and_resume_show_in_the_queue(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    assert (await client.post("/jobs", json={"type": "t", "queue": Q})).status_code == 201
    paused = await client.post(f"/queues/{Q}/pause", headers=JSON)
    assert paused.status_code == 200
    assert paused.json()["paused"] is True
    assert paused.json()["waiting"] == 1
    assert await r.exists(keys.queue(Q).paused) == 1
    assert (await client.get(f"/queues/{Q}")).json()["paused"] is True
    again = await client.post(f"/queues/{Q}/pause", headers=JSON)
    assert again.status_code == 200
    assert again.json()["paused"] is True
    resumed = await client.post(f"/queues/{Q}/resume", headers=JSON)
    assert resumed.status_code == 200
    assert resumed.json()["paused"] is False
    assert await r.exists(keys.queue(Q).paused) == 0
    assert (await client.get(f"/queues/{Q}")).json()["paused"] is False


@pytest.mark.parametrize(
    "path", ["/queues/nope/pause", "/queues/nope/resume", "/queues/n%20o/pause"]
)
async def test_pausing_an_unknown_queue_is_404_and_writes_nothing(
    client: httpx.AsyncClient, key_count: Callable[[], Awaitable[int]], path: str
) -> None:
    before = await key_count()
    assert_problem(await client.post(path, headers=JSON), 404)
    assert await key_count() == before


async def test_pause_refuses_a_query_parameter_and_changes_nothing(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    assert (await client.post("/jobs", json={"type": "t", "queue": Q})).status_code == 201
    response = await client.post(f"/queues/{Q}/pause", params={"limit": "1"}, headers=JSON)
    assert error_fields(assert_problem(response, 422)) == {"limit"}
    assert await r.exists(keys.queue(Q).paused) == 0


async def test_a_job_carries_its_expiry(client: httpx.AsyncClient, r: Redis, keys: Keys) -> None:
    fixed = await client.post(
        "/jobs", json={"type": "t", "queue": Q, "expires_at": "2030-01-01T12:00:00+02:00"}
    )
    assert fixed.status_code == 201
    assert fixed.json()["expires_at"] == "2030-01-01T10:00:00.000Z"
    before = await seed.redis_now_ms(r)
    relative = await client.post(
        "/jobs", json={"type": "t", "queue": Q, "expire_after_seconds": 60}
    )
    assert relative.status_code == 201
    job_id = relative.json()["id"]
    stored = int((await seed.job_hash(r, keys, Q, job_id))["expires_at"])
    assert before + 60_000 <= stored <= await seed.redis_now_ms(r) + 60_000
    shown = (await client.get(f"/jobs/{job_id}")).json()
    assert shown["expires_at"] is not None
    ancient = await client.post(
        "/jobs", json={"type": "t", "queue": Q, "expires_at": "0038-04-10T01:33:06-04:43"}
    )
    assert ancient.status_code == 201
    assert ancient.json()["expires_at"] == "1970-01-01T00:00:00.000Z"  # passed all the same
    plain = await client.post("/jobs", json={"type": "t", "queue": Q})
    assert plain.json()["expires_at"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expire_after_seconds": 0}, "expire_after_seconds"),
        ({"expire_after_seconds": "5"}, "expire_after_seconds"),
        ({"expire_after_seconds": 10**9}, "expire_after_seconds"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"expires_at": "2030-01-01T12:00:00"}, "expires_at"),
        ({"expires_at": "2030-01-01T12:00:00Z", "expire_after_seconds": 5}, "expires_at"),
    ],
)
async def test_a_bad_expiry_is_422_naming_the_field_and_creates_nothing(
    client: httpx.AsyncClient,
    key_count: Callable[[], Awaitable[int]],
    body: dict[str, object],
    field: str,
) -> None:
    before = await key_count()
    response = await client.post("/jobs", json={"type": "t", "queue": Q, **body})
    assert error_fields(assert_problem(response, 422)) == {field}
    assert await key_count() == before


async def test_a_batch_item_carries_its_expiry(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/jobs/batch",
        json={"jobs": [{"type": "t", "expire_after_seconds": 5}, {"type": "t", "expires_at": 1}]},
    )
    assert error_fields(assert_problem(response, 422)) == {"jobs/1/expires_at"}
    ok = await client.post("/jobs/batch", json={"jobs": [{"type": "t", "expire_after_seconds": 5}]})
    assert ok.status_code == 201
    assert ok.json()["jobs"][0]["expires_at"] is not None
