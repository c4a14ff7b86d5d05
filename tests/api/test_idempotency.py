"""`Idempotency-Key` on POST /jobs (and per item of a batch): a repeat returns the original
job, another body under the same key is a conflict, and both hold under real concurrency."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace

import httpx
import pytest
from redis.asyncio import Redis

from conveyor.config import Settings
from conveyor.store.keys import Keys
from tests.api.conftest import assert_problem, error_fields, serve

pytestmark = pytest.mark.anyio

KeyCount = Callable[[], Awaitable[int]]
KEY = "order-42:charge.v1"


def keyed(key: str = KEY) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def jobs_in(r: Redis, keys: Keys, queue: str = "default") -> int:
    count: int = await r.zcard(keys.queue(queue).all_index)
    return count


async def test_first_use_is_201_and_a_repeat_200_with_the_same_job(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    body = {"type": "charge", "payload": {"amount": 5}, "max_attempts": 2}
    first = await client.post("/jobs", json=body, headers=keyed())
    assert first.status_code == 201
    assert first.headers["location"] == f"/jobs/{first.json()['id']}"
    again = await client.post("/jobs", json=body, headers=keyed())
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["payload"] == {"amount": 5}
    assert await jobs_in(r, keys) == 1


async def test_equal_requests_spelled_differently_are_repeats(client: httpx.AsyncClient) -> None:
    """Field order, an explicit default queue, 5.0 for 5 and another UTC offset for the
    same instant are the same request."""
    first = await client.post(
        "/jobs",
        json={"type": "t", "timeout_seconds": 5, "run_at": "2099-01-01T12:00:00Z"},
        headers=keyed(),
    )
    assert first.status_code == 201
    again = await client.post(
        "/jobs",
        json={
            "run_at": "2099-01-01T13:00:00+01:00",
            "queue": "default",
            "timeout_seconds": 5.0,
            "type": "t",
        },
        headers=keyed(),
    )
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


async def test_same_key_with_another_body_is_409(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    first = await client.post("/jobs", json={"type": "charge", "payload": 1}, headers=keyed())
    assert first.status_code == 201
    response = await client.post("/jobs", json={"type": "charge", "payload": 2}, headers=keyed())
    problem = assert_problem(response, 409)
    assert problem["type"] == "urn:conveyor:problem:idempotency-conflict"
    assert problem["job_id"] == first.json()["id"]
    assert error_fields(problem) == {"Idempotency-Key"}
    assert await jobs_in(r, keys) == 1


async def test_keys_are_per_queue(client: httpx.AsyncClient) -> None:
    a = await client.post("/jobs", json={"type": "t", "queue": "qa"}, headers=keyed())
    b = await client.post("/jobs", json={"type": "t", "queue": "qb"}, headers=keyed())
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]


async def test_without_a_key_every_post_creates(client: httpx.AsyncClient) -> None:
    ids = {(await client.post("/jobs", json={"type": "t"})).json()["id"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize(
    "key", ["", "has space", "slash/x", "k" * 256, "caf\u00e9", "{tag}", "semi;colon"]
)
async def test_malformed_key_is_422(
    client: httpx.AsyncClient, key_count: KeyCount, key: str
) -> None:
    before = await key_count()
    response = await client.post(
        "/jobs", json={"type": "t"}, headers={b"Idempotency-Key": key.encode()}
    )
    problem = assert_problem(response, 422)
    assert error_fields(problem) == {"Idempotency-Key"}
    assert await key_count() == before


async def test_key_of_255_characters_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/jobs", json={"type": "t"}, headers=keyed("k" * 255))
    assert response.status_code == 201


async def test_repeated_header_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/jobs",
        json={"type": "t"},
        headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
    )
    problem = assert_problem(response, 422)
    assert error_fields(problem) == {"Idempotency-Key"}


async def test_bad_key_and_bad_fields_are_reported_together(client: httpx.AsyncClient) -> None:
    response = await client.post("/jobs", json={"queue": "a:b"}, headers=keyed("bad key"))
    problem = assert_problem(response, 422)
    assert error_fields(problem) == {"type", "queue", "Idempotency-Key"}


async def test_bad_key_wins_over_a_too_large_payload(client: httpx.AsyncClient) -> None:
    body = {"type": "t", "payload": "x" * 20_000}
    assert_problem(await client.post("/jobs", json=body), 413)
    problem = assert_problem(await client.post("/jobs", json=body, headers=keyed("a b")), 422)
    assert error_fields(problem) == {"Idempotency-Key"}


async def test_batch_item_keys(client: httpx.AsyncClient, r: Redis, keys: Keys) -> None:
    items = [
        {"type": "t", "payload": 1, "idempotency_key": "item-1"},
        {"type": "t", "payload": 2, "idempotency_key": "item-2"},
    ]
    first = await client.post("/jobs/batch", json={"jobs": items})
    assert first.status_code == 201
    ids = [job["id"] for job in first.json()["jobs"]]

    again = await client.post("/jobs/batch", json={"jobs": items})
    assert again.status_code == 200  # every item was a repeat
    assert [job["id"] for job in again.json()["jobs"]] == ids

    mixed = await client.post("/jobs/batch", json={"jobs": [*items, {"type": "t", "payload": 3}]})
    assert mixed.status_code == 201  # one item was new
    assert [job["id"] for job in mixed.json()["jobs"]][:2] == ids
    assert await jobs_in(r, keys) == 3

    # The single-job route shares the keys of the queue.
    single = await client.post("/jobs", json={"type": "t", "payload": 1}, headers=keyed("item-1"))
    assert single.status_code == 200
    assert single.json()["id"] == ids[0]


async def test_batch_key_conflict_is_409_naming_the_items_and_writes_nothing(
    client: httpx.AsyncClient, key_count: KeyCount
) -> None:
    seeded = await client.post("/jobs", json={"type": "t", "payload": 1}, headers=keyed("k1"))
    assert seeded.status_code == 201
    before = await key_count()
    items = [
        {"type": "t", "payload": 0},
        {"type": "t", "payload": 99, "idempotency_key": "k1"},
        {"type": "t", "queue": "other"},
    ]
    problem = assert_problem(await client.post("/jobs/batch", json={"jobs": items}), 409)
    assert problem["type"] == "urn:conveyor:problem:idempotency-conflict"
    assert problem["job_id"] == seeded.json()["id"]
    assert error_fields(problem) == {"jobs/1/idempotency_key"}
    assert await key_count() == before


async def test_one_key_twice_in_a_batch(client: httpx.AsyncClient, key_count: KeyCount) -> None:
    same = [{"type": "t", "payload": 1, "idempotency_key": "twice"}] * 2
    response = await client.post("/jobs/batch", json={"jobs": same})
    assert response.status_code == 201
    a, b = response.json()["jobs"]
    assert a["id"] == b["id"]

    before = await key_count()
    different = [
        {"type": "t", "queue": "fresh", "payload": 1, "idempotency_key": "again"},
        {"type": "t", "queue": "fresh", "payload": 2, "idempotency_key": "again"},
    ]
    problem = assert_problem(await client.post("/jobs/batch", json={"jobs": different}), 409)
    assert error_fields(problem) == {"jobs/0/idempotency_key", "jobs/1/idempotency_key"}
    assert "job_id" not in problem  # neither job exists
    assert "another job of this request" in str(problem["detail"])
    assert await key_count() == before
    # Refused means nothing written, the queue's registration included.
    queues = (await client.get("/queues")).json()
    assert "fresh" not in [q["name"] for q in queues["items"]]


# -- real concurrency: a served app, parallel connections -----------------------------------

PARALLEL = 100


def racing(settings: Settings) -> Settings:
    """Settings for the racing tests: what they show is the outcome of PARALLEL creates at
    once, not their latency, so the Redis deadline (2 s, then 503) is raised; on a machine
    loaded by the whole suite some of them took longer."""
    return replace(settings, redis_timeout_seconds=20.0)


async def post_all(
    base_url: str, requests: list[tuple[str, dict[str, object], dict[str, str]]]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=PARALLEL, max_keepalive_connections=PARALLEL)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as http:
        start = asyncio.Event()

        async def one(
            path: str, body: dict[str, object], headers: dict[str, str]
        ) -> httpx.Response:
            await start.wait()
            return await http.post(path, json=body, headers=headers)

        tasks = [asyncio.create_task(one(*request)) for request in requests]
        await asyncio.sleep(0)
        start.set()
        return await asyncio.gather(*tasks)


async def test_parallel_identical_posts_create_one_job(
    settings: Settings, r: Redis, keys: Keys
) -> None:
    body: dict[str, object] = {"type": "charge", "payload": {"amount": 7}}
    with serve(racing(settings)) as base_url:
        responses = await post_all(base_url, [("/jobs", body, keyed())] * PARALLEL)
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: 1, 200: PARALLEL - 1}
    assert len({response.json()["id"] for response in responses}) == 1
    assert await jobs_in(r, keys) == 1


async def test_parallel_posts_with_two_bodies_one_key(
    settings: Settings, r: Redis, keys: Keys
) -> None:
    """One body wins: its posts get the job (one 201), every post of the other body 409."""
    a: dict[str, object] = {"type": "charge", "payload": "a"}
    b: dict[str, object] = {"type": "charge", "payload": "b"}
    requests = [("/jobs", a if i % 2 else b, keyed()) for i in range(PARALLEL)]
    with serve(racing(settings)) as base_url:
        responses = await post_all(base_url, requests)
    statuses = Counter(response.status_code for response in responses)
    assert statuses[201] == 1
    assert statuses[200] == PARALLEL // 2 - 1
    assert statuses[409] == PARALLEL // 2
    winners = {response.json()["id"] for response in responses if response.status_code < 300}
    losers = {response.json()["job_id"] for response in responses if response.status_code == 409}
    assert len(winners) == 1
    assert losers == winners
    assert await jobs_in(r, keys) == 1


async def test_parallel_identical_batches_create_each_job_once(
    settings: Settings, r: Redis, keys: Keys
) -> None:
    items = [{"type": "t", "payload": i, "idempotency_key": f"b-{i}"} for i in range(10)]
    parallel = 20
    with serve(racing(settings)) as base_url:
        responses = await post_all(base_url, [("/jobs/batch", {"jobs": items}, {})] * parallel)
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: 1, 200: parallel - 1}  # one queue: each batch is atomic
    id_lists = {tuple(job["id"] for job in response.json()["jobs"]) for response in responses}
    assert len(id_lists) == 1
    assert await jobs_in(r, keys) == len(items)
