"""The queue cap through the HTTP API: a create into a new queue beyond it is a 409
problem naming the limit and its setting, with nothing written; known queues still work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

from conveyor.api.app import create_app
from conveyor.config import Settings
from conveyor.errors import QueueLimitReached
from conveyor.http_client import HttpClient
from conveyor.store.keys import Keys
from tests.api.conftest import assert_problem, make_settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(redis_url: str, prefix: str) -> Settings:
    return make_settings(redis_url, prefix, max_queues=2, api_auth="none")


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def registered(r: Redis, keys: Keys) -> set[str]:
    names: Any = await r.smembers(keys.queues)
    return {n.decode() for n in names}


def assert_queue_limit(response: httpx.Response, queues: list[str]) -> None:
    body = assert_problem(response, 409)
    assert body["type"] == "urn:conveyor:problem:queue-limit"
    assert "at most 2 queues may hold jobs (CONVEYOR_MAX_QUEUES)" in str(body["detail"])
    assert body["max_queues"] == 2
    assert body["queues"] == queues


async def test_a_job_for_a_new_queue_beyond_the_cap_is_409(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    for queue in ("a", "b"):
        created = await client.post("/jobs", json={"type": "echo", "queue": queue})
        assert created.status_code == 201, created.text
    refused = await client.post("/jobs", json={"type": "echo", "queue": "c"})
    assert_queue_limit(refused, ["c"])
    assert await registered(r, keys) == {"a", "b"}
    assert [k async for k in r.scan_iter(match=f"{keys.prefix}:{{c}}:*")] == []
    again = await client.post("/jobs", json={"type": "echo", "queue": "a"})
    assert again.status_code == 201, again.text


async def test_a_batch_with_too_many_new_queues_is_refused_whole(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    assert (await client.post("/jobs", json={"type": "echo", "queue": "a"})).status_code == 201
    batch = {"jobs": [{"type": "echo", "queue": q} for q in ("a", "b", "c")]}
    refused = await client.post("/jobs/batch", json=batch)
    assert_queue_limit(refused, ["b", "c"])
    assert await r.zcard(keys.queue("a").all_index) == 1  # not even the known queue's job
    assert await registered(r, keys) == {"a"}


async def test_the_http_client_raises_queue_limit_reached(app: Starlette) -> None:
    transport = httpx.ASGITransport(app=app)
    async with HttpClient("http://api", transport=transport) as client:
        await client.enqueue("echo", queue="a")
        await client.enqueue("echo", queue="b")
        with pytest.raises(QueueLimitReached) as refused:
            await client.enqueue("echo", queue="c")
    assert refused.value.limit == 2
    assert refused.value.queues == ["c"]
    assert "CONVEYOR_MAX_QUEUES" in str(refused.value)
