"""The API's /metrics: jobs created, queue gauges read at scrape time, HTTP metrics by
route template; open without a token; still 200 when Redis is down."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import app_client, make_settings
from tests.metrics.support import families, sample, value

pytestmark = pytest.mark.anyio

TOKEN = "metrics-test-token-0123456789"


async def metrics_text(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_created_counter_and_queue_gauges(redis_url: str, prefix: str) -> None:
    async with app_client(make_settings(redis_url, prefix)) as client:
        for _ in range(2):
            assert (
                await client.post("/jobs", json={"type": "a", "queue": "q1"})
            ).status_code == 201
        batch = {"jobs": [{"type": "b", "queue": "q2"}, {"type": "a", "queue": "q1"}]}
        assert (await client.post("/jobs/batch", json=batch)).status_code == 201
        repeat = {"type": "a", "queue": "q1"}
        key = {"Idempotency-Key": "once"}
        assert (await client.post("/jobs", json=repeat, headers=key)).status_code == 201
        assert (await client.post("/jobs", json=repeat, headers=key)).status_code == 200
        later = {"type": "c", "queue": "q2", "delay_seconds": 3600}
        assert (await client.post("/jobs", json=later)).status_code == 201
        text = await metrics_text(client)
    assert value(text, "conveyor_jobs_created_total", queue="q1", type="a") == 4
    assert value(text, "conveyor_jobs_created_total", queue="q2", type="b") == 1
    assert value(text, "conveyor_jobs_created_total", queue="q2", type="c") == 1
    assert sample(text, "conveyor_queue_waiting", queue="q1") == 4
    assert sample(text, "conveyor_queue_waiting", queue="q2") == 1
    assert sample(text, "conveyor_queue_scheduled", queue="q2") == 1
    assert sample(text, "conveyor_queue_scheduled", queue="q1") == 0
    for gauge in ("pending", "retrying", "failed", "consumers"):
        assert sample(text, f"conveyor_queue_{gauge}", queue="q1") == 0, gauge
    age = sample(text, "conveyor_queue_oldest_waiting_age_seconds", queue="q1")
    assert age is not None
    assert 0 <= age < 60


async def test_http_metrics_use_route_templates(redis_url: str, prefix: str) -> None:
    async with app_client(make_settings(redis_url, prefix)) as client:
        created = await client.post("/jobs", json={"type": "a"})
        job_id = created.json()["id"]
        assert (await client.get(f"/jobs/{job_id}")).status_code == 200
        assert (await client.get(f"/jobs/{job_id}")).status_code == 200
        assert (await client.get("/jobs/00000000000000000000000000")).status_code == 404
        assert (await client.get("/no/such/path")).status_code == 404
        assert (await client.get("/queues/default")).status_code in (200, 404)
        text = await metrics_text(client)
    assert job_id not in text
    assert value(text, "conveyor_http_requests_total", method="GET", route="/jobs/{job_id}",
                 status="200") == 2  # fmt: skip
    assert value(text, "conveyor_http_requests_total", method="GET", route="/jobs/{job_id}",
                 status="404") == 1  # fmt: skip
    assert value(text, "conveyor_http_requests_total", method="POST", route="/jobs",
                 status="201") == 1  # fmt: skip
    assert value(text, "conveyor_http_requests_total", method="GET", route="unmatched",
                 status="404") == 1  # fmt: skip
    assert value(text, "conveyor_http_request_duration_seconds_count", method="GET",
                 route="/jobs/{job_id}") == 3  # fmt: skip
    assert "/no/such/path" not in text


async def test_metrics_need_no_token_and_401s_are_counted(redis_url: str, prefix: str) -> None:
    settings = make_settings(redis_url, prefix, api_tokens=(TOKEN,))
    async with app_client(settings) as client:
        assert (await client.get("/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV")).status_code == 401
        text = await metrics_text(client)
    assert value(text, "conveyor_http_requests_total", method="GET", route="/jobs/{job_id}",
                 status="401") == 1  # fmt: skip


async def test_metrics_answer_when_redis_is_down(prefix: str) -> None:
    settings = make_settings("redis://127.0.0.1:1/0", prefix, redis_timeout_seconds=0.2)
    async with app_client(settings) as client:
        text = await metrics_text(client)
        again = await metrics_text(client)
    assert "conveyor_queue_waiting" not in families(text)
    assert value(again, "conveyor_http_requests_total", method="GET", route="/metrics",
                 status="200") == 1  # fmt: skip
    assert "conveyor_jobs_created" in families(text)
