"""Shared fixtures: one private redis-server per test process, one key prefix per test.

Tests never flush Redis: each uses its own random key prefix, so they run in any order and
in parallel (pytest-xdist) against the same server.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from conveyor.redis_packing import use_hiredis_packing
from conveyor.store.keys import Keys
from tests.helpers.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def keys(prefix: str) -> Keys:
    return Keys(prefix)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def r(redis_server: RedisServer) -> AsyncIterator[Redis]:
    # Packing as the product's clients do (shared.redis_packing), so the store tests
    # exercise the bytes Conveyor really sends.
    client = use_hiredis_packing(
        Redis(port=redis_server.port, socket_timeout=5, socket_connect_timeout=5)
    )
    yield client
    await client.aclose()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
