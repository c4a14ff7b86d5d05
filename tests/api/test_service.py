"""Probes, correlation ids, Redis outages and unexpected errors."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conveyor.api.app import create_app
from conveyor.errors import DuplicateJob, InvalidTransition, StoreUnavailable
from conveyor.ids import new_job_id
from conveyor.logs import ContextFilter
from conveyor.store.producer import ProducerStore
from tests.api.conftest import assert_problem, make_settings
from tests.helpers.http import JSON
from tests.helpers.redis_server import RedisServer, free_port

pytestmark = pytest.mark.anyio

SECRET = "s3cret-pa55word"
UNKNOWN_ID = "01J00000000000000000000000"  # well formed; fixed, so xdist workers agree


@pytest.fixture
async def down_client(prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API pointed at a port nothing listens on, with a password in its Redis URL."""
    url = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    app = create_app(make_settings(url, prefix))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            yield c


async def test_healthz_is_200(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_200_when_redis_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"  # the rest: tests/api/test_health.py


async def test_healthz_does_not_need_redis(down_client: httpx.AsyncClient) -> None:
    assert (await down_client.get("/healthz")).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/readyz", None),
        ("POST", "/jobs", {"type": "noop"}),
        ("GET", f"/jobs/{UNKNOWN_ID}", None),
        ("DELETE", f"/jobs/{UNKNOWN_ID}", None),
        ("GET", "/jobs?status=pending", None),
        ("POST", "/jobs/batch", {"jobs": [{"type": "noop"}]}),
        ("POST", f"/jobs/{UNKNOWN_ID}/retry", None),
        ("GET", "/queues", None),
        ("GET", "/queues/default", None),
        ("GET", "/workers", None),
    ],
)
async def test_unreachable_redis_is_503_quickly(
    down_client: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    started = time.monotonic()
    response = await down_client.request(method, path, json=body, headers=JSON)
    assert time.monotonic() - started < 3
    problem = assert_problem(response, 503)
    assert problem["type"] == "urn:conveyor:problem:store-unavailable"
    assert int(response.headers["retry-after"]) >= 1
    assert SECRET not in response.text
    assert "127.0.0.1" not in response.text
    assert "redis://" not in response.text


async def test_input_errors_and_bad_ids_do_not_need_redis(down_client: httpx.AsyncClient) -> None:
    """Refusals are decided before Redis is touched: they are 4xx even when it is away."""
    assert_problem(await down_client.post("/jobs", json={"type": "a:b"}), 422)
    assert_problem(
        await down_client.post("/jobs", content=b"{", headers={"content-type": "application/json"}),
        400,
    )
    assert_problem(await down_client.get("/jobs/*"), 404)
    assert_problem(await down_client.delete("/jobs/..%2Fx", headers=JSON), 404)
    assert_problem(await down_client.get("/jobs?limit=0"), 422)
    assert_problem(await down_client.get("/jobs?created_after=today"), 422)
    assert_problem(await down_client.post("/jobs/batch", json={"jobs": []}), 422)
    assert_problem(
        await down_client.post("/jobs", json={"type": "t"}, headers={"Idempotency-Key": "a b"}),
        422,
    )
    assert_problem(await down_client.post("/jobs/*/retry", headers=JSON), 404)
    assert_problem(await down_client.get("/queues/a:b"), 404)


async def test_paused_redis_is_503_within_the_deadline(tmp_path: Path, prefix: str) -> None:
    server = RedisServer(tmp_path / "paused")
    server.start()
    try:
        app = create_app(make_settings(server.url, prefix, redis_timeout_seconds=1.0))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
                assert (await c.post("/jobs", json={"type": "noop"})).status_code == 201
                server.pause()
                try:
                    for method, path in [
                        ("GET", "/readyz"),
                        ("GET", "/jobs"),
                        ("GET", "/queues"),
                        ("GET", "/workers"),
                    ]:
                        started = time.monotonic()
                        response = await c.request(method, path)
                        assert time.monotonic() - started < 3
                        assert_problem(response, 503)
                finally:
                    server.resume()
                assert (await c.get("/readyz")).status_code == 200
    finally:
        server.stop()


async def test_unexpected_error_is_a_bare_500(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(self: ProducerStore, job_id: str, queue: str | None = None) -> None:
        raise RuntimeError(f"boom at redis://:{SECRET}@db.internal:6379 in /srv/secret.py")

    monkeypatch.setattr(ProducerStore, "get", explode)
    response = await client.get(f"/jobs/{new_job_id()}", headers={"X-Correlation-ID": "err-1"})
    problem = assert_problem(response, 500)
    assert problem["type"] == "urn:conveyor:problem:internal-error"
    assert response.headers["x-correlation-id"] == "err-1"
    for leak in (SECRET, "boom", "db.internal", "secret.py", "Traceback", "RuntimeError"):
        assert leak not in response.text


async def test_redis_error_reply_is_a_500_without_its_text(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: ProducerStore, job_id: str, queue: str | None = None) -> None:
        raise ResponseError("ERR user script failed at line 7: key conveyor:{q}:job:x")

    monkeypatch.setattr(ProducerStore, "get", broken)
    response = await client.get(f"/jobs/{new_job_id()}")
    assert_problem(response, 500)
    assert "script" not in response.text


async def test_transient_redis_reply_is_503(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def full(self: ProducerStore, job_id: str, queue: str | None = None) -> None:
        raise ResponseError("OOM command not allowed when used memory > 'maxmemory'.")

    monkeypatch.setattr(ProducerStore, "get", full)
    response = await client.get(f"/jobs/{new_job_id()}")
    assert_problem(response, 503)
    assert "retry-after" in response.headers


@pytest.mark.parametrize(
    ("error", "status", "slug"),
    [
        (DuplicateJob(UNKNOWN_ID), 409, "duplicate-job"),
        (InvalidTransition("failed", "cancel"), 409, "invalid-transition"),
        (StoreUnavailable("redis is away"), 503, "store-unavailable"),
        (RedisTimeoutError("Timeout reading from 10.0.0.1:6379"), 503, "store-unavailable"),
        (RedisConnectionError("Error 111 connecting"), 503, "store-unavailable"),
        (TimeoutError(), 503, "store-unavailable"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
async def test_store_errors_map_to_problems(
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    status: int,
    slug: str,
) -> None:
    async def fail(self: ProducerStore, job_id: str, queue: str | None = None) -> None:
        raise error

    monkeypatch.setattr(ProducerStore, "get", fail)
    response = await client.get(f"/jobs/{UNKNOWN_ID}")
    problem = assert_problem(response, status)
    assert problem["type"] == f"urn:conveyor:problem:{slug}"
    assert ("retry-after" in response.headers) == (status == 503)
    assert "10.0.0.1" not in response.text


# -- correlation ids ----------------------------------------------------------------------------

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize("header", ["X-Correlation-ID", "X-Request-ID", "x-correlation-id"])
async def test_valid_correlation_id_is_echoed_and_stored(
    client: httpx.AsyncClient, header: str
) -> None:
    cid = "req-2024.06:abc_DEF-1"
    response = await client.post("/jobs", json={"type": "noop"}, headers={header: cid})
    assert response.status_code == 201
    assert response.headers["x-correlation-id"] == cid
    assert response.json()["correlation_id"] == cid
    stored = await client.get(response.headers["location"])
    assert stored.json()["correlation_id"] == cid
    assert stored.headers["x-correlation-id"] != cid  # each request has its own


async def test_correlation_id_header_wins_over_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/healthz", headers={"X-Request-ID": "from-request-id", "X-Correlation-ID": "preferred"}
    )
    assert response.headers["x-correlation-id"] == "preferred"


@pytest.mark.parametrize(
    "bad",
    [
        "has space",
        "semi;colon",
        "slash/x",
        'quote"x',
        "{brace}",
        "a" * 129,
        "b" * 200,
        "\u00e9t\u00e9",
    ],
)
async def test_invalid_correlation_id_is_replaced(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.post(
        "/jobs", json={"type": "noop"}, headers={b"X-Correlation-ID": bad.encode("utf-8")}
    )
    assert response.status_code == 201
    replaced = response.headers["x-correlation-id"]
    assert GENERATED.fullmatch(replaced)
    assert response.json()["correlation_id"] == replaced


async def test_correlation_id_128_chars_is_accepted(client: httpx.AsyncClient) -> None:
    cid = "c" * 128
    response = await client.get("/healthz", headers={"X-Correlation-ID": cid})
    assert response.headers["x-correlation-id"] == cid


async def test_problems_carry_the_correlation_id(client: httpx.AsyncClient) -> None:
    response = await client.post("/jobs", json={}, headers={"X-Request-ID": "trace-9"})
    assert_problem(response, 422)
    assert response.headers["x-correlation-id"] == "trace-9"


async def test_generated_correlation_id_without_header(client: httpx.AsyncClient) -> None:
    response = await client.post("/jobs", json={"type": "noop"})
    cid = response.headers["x-correlation-id"]
    assert GENERATED.fullmatch(cid)
    assert response.json()["correlation_id"] == cid


async def test_request_log_lines_carry_the_correlation_id(
    down_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(ContextFilter())
    response = await down_client.get("/readyz", headers={"X-Correlation-ID": "log-me"})
    assert response.status_code == 503
    records = [r for r in caplog.records if r.name == "conveyor.api"]
    assert records  # the outage is logged...
    assert all(getattr(r, "correlation_id", None) == "log-me" for r in records)  # ...with the id
