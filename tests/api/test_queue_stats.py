"""GET /queues and /metrics share one statistics read per `stats_cache_seconds` (counted
on the test's redis-server with INFO commandstats), pages of queues by name, and a read
capped at `max_queues` queues."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from starlette.applications import Starlette

from conveyor.api.app import create_app
from conveyor.store.keys import Keys
from conveyor.store.stats_cache import StatsCache
from tests.api.conftest import assert_problem, error_fields, make_settings
from tests.helpers.command_stats import calls
from tests.helpers.wait import eventually_async

pytestmark = pytest.mark.anyio


def app_for(redis_url: str, prefix: str, **overrides: object) -> Starlette:
    return create_app(make_settings(redis_url, prefix, api_auth="none", **overrides))


@pytest.fixture
async def started(
    request: pytest.FixtureRequest, redis_url: str, prefix: str
) -> AsyncIterator[tuple[httpx.AsyncClient, StatsCache]]:
    overrides: dict[str, object] = getattr(request, "param", {})
    app = app_for(redis_url, prefix, **overrides)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client, app.state.queue_stats


async def enqueue(client: httpx.AsyncClient, queue: str) -> None:
    response = await client.post("/jobs", json={"type": "t", "queue": queue})
    assert response.status_code == 201, response.text


def waiting(body: dict[str, Any]) -> dict[str, int]:
    return {q["name"]: q["waiting"] for q in body["items"]}


@pytest.mark.parametrize("started", [{"stats_cache_seconds": 30}], indirect=True)
async def test_concurrent_callers_share_one_read(
    started: tuple[httpx.AsyncClient, StatsCache], r: Redis
) -> None:
    client, cache = started
    for name in ("a", "b", "c"):
        await enqueue(client, name)
    before = await calls(r, "smembers"), await calls(r, "xlen")

    responses = await asyncio.gather(
        *(client.get("/queues") for _ in range(20)), client.get("/metrics")
    )

    assert all(r.status_code == 200 for r in responses)
    assert {r.text for r in responses[:-1]} == {responses[0].text}
    assert waiting(responses[0].json()) == {"a": 1, "b": 1, "c": 1}
    assert 'conveyor_queue_waiting{queue="b"} 1.0' in responses[-1].text
    assert cache.reads == 1
    after = await calls(r, "smembers"), await calls(r, "xlen")
    assert (after[0] - before[0], after[1] - before[1]) == (1, 3)  # one read of 3 queues


@pytest.mark.parametrize("started", [{"stats_cache_seconds": 0.3}], indirect=True)
async def test_reused_until_the_interval_passes(
    started: tuple[httpx.AsyncClient, StatsCache],
) -> None:
    client, cache = started
    await enqueue(client, "a")
    assert waiting((await client.get("/queues")).json()) == {"a": 1}
    await enqueue(client, "a")
    assert waiting((await client.get("/queues")).json()) == {"a": 1}  # cached

    async def fresh() -> bool:
        return waiting((await client.get("/queues")).json()) == {"a": 2}

    await eventually_async(fresh, timeout=5, what="a fresh read after the interval")
    assert cache.reads >= 2


@pytest.mark.parametrize("started", [{"stats_cache_seconds": 0}], indirect=True)
async def test_zero_reads_every_time(
    started: tuple[httpx.AsyncClient, StatsCache], r: Redis
) -> None:
    client, cache = started
    await enqueue(client, "a")
    before = await calls(r, "smembers")
    for n in range(2, 5):
        await enqueue(client, "a")
        assert waiting((await client.get("/queues")).json()) == {"a": n}
    assert await calls(r, "smembers") - before == cache.reads == 3


@pytest.mark.parametrize("started", [{"stats_cache_seconds": 0}], indirect=True)
async def test_pages_by_name_with_a_cursor(started: tuple[httpx.AsyncClient, StatsCache]) -> None:
    client, _ = started
    names = ["e", "a", "d", "b", "c"]
    for name in names:
        await enqueue(client, name)
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/queues", params=params)).json()
        assert body["total"] == 5
        pages.append([q["name"] for q in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [["a", "b"], ["c", "d"], ["e"]]
    # A cursor names the last queue seen; it need not exist any more.
    after_bb = (await client.get("/queues", params={"cursor": "bb"})).json()
    assert [q["name"] for q in after_bb["items"]] == ["c", "d", "e"]
    assert after_bb["next_cursor"] is None
    whole = (await client.get("/queues")).json()
    assert [q["name"] for q in whole["items"]] == sorted(names)


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("limit=0", {"limit"}),
        ("limit=1001", {"limit"}),
        ("limit=x", {"limit"}),
        ("cursor=a:b", {"cursor"}),
        ("limit=1&limit=2", {"limit"}),
        ("page=2&cursor=%2A", {"page", "cursor"}),
    ],
)
async def test_a_bad_page_is_refused_naming_the_field(
    started: tuple[httpx.AsyncClient, StatsCache], query: str, fields: set[str]
) -> None:
    client, cache = started
    problem = assert_problem(await client.get(f"/queues?{query}"), 422)
    assert error_fields(problem) == fields
    assert cache.reads == 0  # refused before any read


@pytest.mark.parametrize("started", [{"stats_cache_seconds": 0, "max_queues": 3}], indirect=True)
async def test_one_read_covers_at_most_max_queues(
    started: tuple[httpx.AsyncClient, StatsCache], r: Redis, keys: Keys
) -> None:
    """A registry holding more queues than the cap (as one from before the cap may): the
    statistics, the page and the gauges cover the first max_queues by name."""
    client, _ = started
    await r.sadd(keys.queues, "q4", "q2", "q0", "q3", "q1")
    before = await calls(r, "zcard")
    body = (await client.get("/queues")).json()
    assert [q["name"] for q in body["items"]] == ["q0", "q1", "q2"]
    assert (body["total"], body["next_cursor"]) == (5, None)
    # queue_stats.lua counts 7 status indexes per queue: 3 queues were read, not 5.
    assert await calls(r, "zcard") - before == 3 * 7
    text = (await client.get("/metrics")).text
    assert 'conveyor_queue_waiting{queue="q2"}' in text
    assert 'queue="q3"' not in text
    assert "conveyor_queues 5.0" in text
    assert "conveyor_queues_reported 3.0" in text


async def test_a_redis_outage_is_a_503_and_not_kept(redis_url: str, prefix: str) -> None:
    """The failure reaches the caller; once Redis answers, the next call reads again."""
    app = app_for(redis_url, prefix, stats_cache_seconds=30)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            real = app.state.redis.smembers

            async def down(*args: object, **kwargs: object) -> object:
                raise RedisConnectionError("Redis is down")

            app.state.redis.smembers = down
            try:
                problem = assert_problem(await client.get("/queues"), 503)
                assert problem["type"] == "urn:conveyor:problem:store-unavailable"
            finally:
                app.state.redis.smembers = real
            response = await client.get("/queues")
            assert response.status_code == 200
            assert app.state.queue_stats.reads == 2
