"""`/queues/{name}/throughput`, `/retry-failed` and `/purge`, the stale flag of `/workers`,
and the dashboard's page being served without a token."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from conveyor.api.app import create_app
from conveyor.store.consumer import Failure
from conveyor.store.keys import Keys
from conveyor.store.workers import WorkerRegistry
from tests.api.conftest import assert_problem, error_fields, make_settings
from tests.helpers import seed
from tests.helpers.http import JSON

pytestmark = pytest.mark.anyio
Q = "mail"


async def fail_jobs(r: Redis, keys: Keys, n: int, queue: str = Q) -> None:
    producer = seed.producer_store(r, keys)
    consumer = seed.consumer_store(r, keys)
    await seed.enqueue_many(producer, n, queue)
    claimed = await seed.claim_all(consumer, queue, count=n)
    failures = [Failure(c, "ValueError: <b>x</b>", "failed", False, 0, None) for c in claimed]
    await consumer.finish(failures=failures, schedule_channel="")


async def test_throughput_shows_the_minutes_of_a_queue(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    await fail_jobs(r, keys, 2)
    response = await client.get(f"/queues/{Q}/throughput", params={"minutes": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["queue"] == Q
    assert len(body["minutes"]) == 3
    assert sum(m["failed"] for m in body["minutes"]) == 2
    assert sum(m["completed"] for m in body["minutes"]) == 0
    default = (await client.get(f"/queues/{Q}/throughput")).json()
    assert len(default["minutes"]) == 15


@pytest.mark.parametrize(
    ("query", "field"),
    [({"minutes": "0"}, "minutes"), ({"minutes": "61"}, "minutes"), ({"x": "1"}, "x")],
)
async def test_throughput_refuses_bad_queries(
    client: httpx.AsyncClient, r: Redis, keys: Keys, query: dict[str, str], field: str
) -> None:
    await fail_jobs(r, keys, 1)
    response = await client.get(f"/queues/{Q}/throughput", params=query)
    assert field in error_fields(assert_problem(response, 422))


@pytest.mark.parametrize(
    "path", ["/queues/nope/throughput", "/queues/nope/retry-failed", "/queues/n%20o/purge"]
)
async def test_unknown_queues_are_404(client: httpx.AsyncClient, path: str) -> None:
    method = "GET" if path.endswith("throughput") else "POST"
    params = {"status": "failed"} if path.endswith("purge") else {}
    response = await client.request(method, path, params=params, headers=JSON)
    assert_problem(response, 404)


async def test_retry_failed_is_bounded_and_says_what_remains(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    await fail_jobs(r, keys, 5)
    first = await client.post(f"/queues/{Q}/retry-failed", params={"limit": 3}, headers=JSON)
    assert first.status_code == 200
    assert first.json() == {"retried": 3, "remaining": 2}
    rest = await client.post(f"/queues/{Q}/retry-failed", headers=JSON)
    assert rest.json() == {"retried": 2, "remaining": 0}
    queue = (await client.get(f"/queues/{Q}")).json()
    assert (queue["failed"], queue["waiting"]) == (0, 5)


async def test_purge_needs_a_finished_status(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    await fail_jobs(r, keys, 3)
    for query in ({}, {"status": "running"}):
        response = await client.post(f"/queues/{Q}/purge", params=query, headers=JSON)
        assert "status" in error_fields(assert_problem(response, 422))
    assert_problem(await client.post(f"/queues/{Q}/purge?status=failed&limit=0", headers=JSON), 422)
    response = await client.post(f"/queues/{Q}/purge", params={"status": "failed"}, headers=JSON)
    assert response.json() == {"purged": 3, "remaining": 0}
    assert (await client.get(f"/queues/{Q}")).json()["failed"] == 0


async def test_a_worker_with_an_overdue_heartbeat_is_flagged_stale(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    registry = WorkerRegistry(r, keys)
    await registry.beat("w-fresh", {"host": "h", "queues": Q}, 5)
    await registry.beat("w-late", {"host": "h", "queues": Q}, 5)
    now = await seed.redis_now_ms(r)
    await r.hset(keys.worker("w-late"), "last_seen", now - 60_000)  # settings: 5 s beats
    items = (await client.get("/workers")).json()["items"]
    assert {w["id"]: w["stale"] for w in items} == {"w-fresh": False, "w-late": True}


async def test_the_dashboard_page_and_assets_need_no_token_but_its_data_does(
    redis_url: str, prefix: str
) -> None:
    token = "dashboard-test-token-0123456789"
    app = create_app(make_settings(redis_url, prefix, api_tokens=(token,)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            page = await c.get("/")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            csp = page.headers["content-security-policy"]
            assert "script-src 'self';" in csp
            assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
            assert "<script" in page.text
            assert "onclick" not in page.text.lower()
            script = await c.get("/ui/static/js/main.js")
            assert script.status_code == 200
            assert "javascript" in script.headers["content-type"]
            assert (await c.get("/ui/static/style.css")).status_code == 200
            assert (await c.get("/ui/static/../../jobs")).status_code in (401, 404)
            assert (await c.get("/queues")).status_code == 401
            authorized = await c.get("/queues", headers={"Authorization": f"Bearer {token}"})
            assert authorized.status_code == 200
