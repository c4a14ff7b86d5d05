"""`unique_key` on POST /jobs and per batch item: while the job holding it is not finished,
a create answers that job with 200 (whatever the body); bad unique fields are 422."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
from redis.asyncio import Redis

from conveyor.config import Settings
from conveyor.store.keys import Keys
from tests.api.conftest import error_fields, serve
from tests.api.test_idempotency import PARALLEL, jobs_in, post_all, racing

pytestmark = pytest.mark.anyio


async def test_a_held_key_answers_200_with_the_holder(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    first = await client.post("/jobs", json={"type": "t", "payload": 1, "unique_key": "u1"})
    assert first.status_code == 201
    again = await client.post(
        "/jobs", json={"type": "t", "payload": 2, "unique_key": "u1", "unique_for_seconds": 5}
    )
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["payload"] == 1
    assert await jobs_in(r, keys) == 1


async def test_a_batch_answers_the_holder_per_item(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    held = await client.post("/jobs", json={"type": "t", "unique_key": "u1"})
    batch = await client.post(
        "/jobs/batch",
        json={"jobs": [{"type": "t", "unique_key": "u1"}, {"type": "t", "unique_key": "u2"}]},
    )
    assert batch.status_code == 201
    ids = [job["id"] for job in batch.json()["jobs"]]
    assert ids[0] == held.json()["id"]
    assert ids[1] != ids[0]
    assert await jobs_in(r, keys) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "t", "unique_key": "no spaces"}, "unique_key"),
        ({"type": "t", "unique_key": "k", "unique_for_seconds": -1}, "unique_for_seconds"),
        ({"type": "t", "unique_for_seconds": 3}, "unique_for_seconds"),
    ],
)
async def test_bad_unique_fields_are_422_naming_the_field(
    client: httpx.AsyncClient, r: Redis, keys: Keys, body: dict[str, object], field: str
) -> None:
    response = await client.post("/jobs", json=body)
    assert response.status_code == 422
    assert error_fields(response.json()) == {field}
    assert await jobs_in(r, keys) == 0


async def test_parallel_unique_posts_create_one_job(
    settings: Settings, r: Redis, keys: Keys
) -> None:
    requests: list[tuple[str, dict[str, object], dict[str, str]]] = [
        ("/jobs", {"type": "t", "payload": i, "unique_key": "nightly"}, {}) for i in range(PARALLEL)
    ]
    with serve(racing(settings)) as base_url:
        responses = await post_all(base_url, requests)
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: 1, 200: PARALLEL - 1}
    assert len({response.json()["id"] for response in responses}) == 1
    assert await jobs_in(r, keys) == 1
