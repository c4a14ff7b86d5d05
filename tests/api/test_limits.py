"""`/queues/{name}/limits`: set, list and remove a queue's concurrency and rate limits;
`limit_key` on a new job. Bad input is a 4xx naming the field, with nothing written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
from redis.asyncio import Redis

from conveyor.store.keys import Keys
from tests.api.conftest import app_client, assert_problem, error_fields, make_settings
from tests.helpers import seed
from tests.helpers.http import JSON

pytestmark = pytest.mark.anyio
Q = "mail"


async def test_put_list_and_delete_a_limit(client: httpx.AsyncClient, r: Redis, keys: Keys) -> None:
    put = await client.put(f"/queues/{Q}/limits/type:send", json={"max_running": 2})
    assert put.status_code == 201
    assert put.json() == {"queue": Q, "key": "type:send", "max_running": 2}
    again = await client.put(
        f"/queues/{Q}/limits/type:send", json={"max_running": 3, "max_per_second": 2.5}
    )
    assert again.status_code == 200
    await client.put(f"/queues/{Q}/limits/queue", json={"max_per_second": 10, "burst": 5})
    listed = await client.get(f"/queues/{Q}/limits")
    assert listed.status_code == 200
    assert listed.json() == {
        "queue": Q,
        "limits": [
            {"key": "queue", "max_per_second": 10.0, "burst": 5, "running": 0, "held": 0},
            {"key": "type:send", "max_running": 3, "max_per_second": 2.5, "running": 0, "held": 0},
        ],
    }
    deleted = await client.delete(f"/queues/{Q}/limits/type:send", headers=JSON)
    assert deleted.status_code == 204
    assert_problem(await client.delete(f"/queues/{Q}/limits/type:send", headers=JSON), 404)
    assert await r.hkeys(keys.queue(Q).limits) == [b"queue"]


async def test_the_list_shows_running_and_held_jobs(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    await client.put(f"/queues/{Q}/limits/tenant-1", json={"max_running": 1})
    producer, consumer = seed.producer_store(r, keys), seed.consumer_store(r, keys)
    await seed.enqueue_many(producer, 3, Q, limit_key="tenant-1")
    await consumer.ensure_groups([Q])
    await consumer.fetch([Q], count=10, block_ms=0)
    [state] = (await client.get(f"/queues/{Q}/limits")).json()["limits"]
    assert (state["running"], state["held"]) == (1, 2)


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/queues/a{b}/limits/queue", {"max_running": 1}, 422, "name"),
        ("/queues/m/limits/type:", {"max_running": 1}, 422, "key"),
        ("/queues/m/limits/a:b", {"max_running": 1}, 422, "key"),
        ("/queues/m/limits/queue", {}, 422, "body"),
        ("/queues/m/limits/queue", {"max_running": -1}, 422, "max_running"),
        ("/queues/m/limits/queue", {"max_running": "2"}, 422, "max_running"),
        ("/queues/m/limits/queue", {"max_per_second": 0}, 422, "max_per_second"),
        ("/queues/m/limits/queue", {"burst": 2}, 422, "burst"),
        ("/queues/m/limits/queue", {"max_running": 1, "x": 1}, 422, "x"),
    ],
)
async def test_bad_limits_are_refused_naming_the_field(
    client: httpx.AsyncClient,
    key_count: Callable[[], Awaitable[int]],
    path: str,
    body: object,
    status: int,
    field: str,
) -> None:
    response = await client.put(path, json=body)
    problem = assert_problem(response, status)
    assert error_fields(problem) == {field}
    assert await key_count() == 0


async def test_a_limit_body_must_be_json(client: httpx.AsyncClient) -> None:
    response = await client.put(
        f"/queues/{Q}/limits/queue",
        content=b"max_running=1",
        headers={"Content-Type": "text/plain"},
    )
    assert_problem(response, 415)


async def test_the_number_of_limit_keys_is_bounded(
    redis_url: str, prefix: str, r: Redis, keys: Keys
) -> None:
    settings = make_settings(redis_url, prefix, max_limits_per_queue=2)
    async with app_client(settings) as c:
        for key in ("a", "b"):
            assert (
                await c.put(f"/queues/{Q}/limits/{key}", json={"max_running": 1})
            ).status_code == 201
        problem = assert_problem(await c.put(f"/queues/{Q}/limits/c", json={"max_running": 1}), 409)
        assert str(problem["type"]).endswith("limit-count")
        assert problem["max_limits_per_queue"] == 2
    assert sorted(await r.hkeys(keys.queue(Q).limits)) == [b"a", b"b"]


async def test_a_job_carries_its_limit_key(client: httpx.AsyncClient, r: Redis, keys: Keys) -> None:
    created = await client.post("/jobs", json={"type": "send", "queue": Q, "limit_key": "t-9"})
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["limit_key"] == "t-9"
    assert (await client.get(f"/jobs/{job['id']}")).json()["limit_key"] == "t-9"
    h = await seed.job_hash(r, keys, Q, job["id"])
    assert h["limit_key"] == b"t-9"
    plain = (await client.post("/jobs", json={"type": "send", "queue": Q})).json()
    assert plain["limit_key"] is None


@pytest.mark.parametrize("value", ["queue", "a:b", "", 7])
async def test_a_bad_limit_key_on_a_job_is_refused(
    client: httpx.AsyncClient, key_count: Callable[[], Awaitable[int]], value: object
) -> None:
    response = await client.post("/jobs", json={"type": "send", "limit_key": value})
    assert error_fields(assert_problem(response, 422)) == {"limit_key"}
    assert await key_count() == 0


async def test_a_read_token_may_list_but_not_change_limits(redis_url: str, prefix: str) -> None:
    settings = make_settings(
        redis_url,
        prefix,
        api_tokens=("full-token-0123456789",),
        api_read_tokens=("read-token-0123456789",),
    )
    async with app_client(settings) as c:
        read = {"Authorization": "Bearer read-token-0123456789"}
        assert (await c.get(f"/queues/{Q}/limits", headers=read)).status_code == 200
        refused = await c.put(f"/queues/{Q}/limits/queue", json={"max_running": 1}, headers=read)
        assert refused.status_code == 403
