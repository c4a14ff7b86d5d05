"""Fixtures of the HTTP API tests: the app against the private redis-server, in-process."""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import pytest
import uvicorn
from redis.asyncio import Redis
from starlette.applications import Starlette

from conveyor.api.app import create_app
from conveyor.config import Settings
from tests.helpers.http import JSON as JSON  # re-exported for the API tests
from tests.helpers.wait import eventually

MAX_PAYLOAD = 16 * 1024  # small, so the size limits are cheap to reach
TOKEN_SETTINGS = {"api_tokens", "api_read_tokens", "api_tokens_file"}


def make_settings(redis_url: str, prefix: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "redis_url": redis_url,
        "key_prefix": prefix,
        "max_payload_bytes": MAX_PAYLOAD,
        "redis_timeout_seconds": 1.0,
        "result_ttl_seconds": 600,
    }
    if not TOKEN_SETTINGS & overrides.keys():
        values["api_auth"] = "none"  # an open API, unless the test is about tokens
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(redis_url: str, prefix: str) -> Settings:
    return make_settings(redis_url, prefix)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


async def count_keys(r: Redis, prefix: str) -> int:
    return len([k async for k in r.scan_iter(match=f"{prefix}:*", count=1000)])


@pytest.fixture
def key_count(r: Redis, prefix: str) -> Callable[[], Awaitable[int]]:
    """How many Redis keys the test's prefix holds right now."""

    async def count() -> int:
        return await count_keys(r, prefix)

    return count


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert isinstance(body, dict)
    assert body["status"] == status
    assert isinstance(body["type"], str)
    assert isinstance(body["title"], str)
    return body


def error_fields(body: dict[str, object]) -> set[str]:
    errors = body["errors"]
    assert isinstance(errors, list)
    return {e["field"] for e in errors}


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of a fresh app for `settings`, its lifespan running."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            yield c


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The app for `settings` served by uvicorn on a free local port, in a thread; yields
    its base URL. Requests to it are real, concurrent HTTP connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            lifespan="on",
            log_config=None,
            loop="asyncio",
            backlog=512,
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        eventually(lambda: server.started or not thread.is_alive(), timeout=20, what="api up")
        assert server.started, "the API did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
