"""Fixtures of the CLI and HTTP client tests: real `conveyor api` processes on free ports.

An API is started once per test module (per xdist worker) with its own key prefix; tests
keep apart by using queue names of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers.http import open_unless_tokens
from tests.helpers.redis_server import RedisServer, free_port
from tests.helpers.wait import eventually

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
TOKEN = "full-token-0123456789abcdef"
READ_TOKEN = "read-token-0123456789abcdef"


@dataclass
class Api:
    url: str
    redis_url: str
    prefix: str
    process: subprocess.Popen[bytes]
    log: Path


def _answers(url: str, path: str) -> bool:
    try:
        return httpx.get(f"{url}{path}", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def start_api(workdir: Path, redis_url: str, prefix: str, probe: str, **env: str) -> Api:
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    environ.update(
        {
            "CONVEYOR_REDIS_URL": redis_url,
            "CONVEYOR_KEY_PREFIX": prefix,
            "CONVEYOR_LOG_FORMAT": "json",
            "CONVEYOR_REDIS_TIMEOUT_SECONDS": "0.5",
            # The tests compare the HTTP and Redis-direct modes: no statistics cache.
            "CONVEYOR_STATS_CACHE_SECONDS": "0",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            **env,
        }
    )
    open_unless_tokens(environ)
    log = workdir / f"api-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [CONVEYOR, "api", "--host", "127.0.0.1", "--port", str(port)],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(
            lambda: _answers(url, probe) or process.poll() is not None,
            timeout=20,
            what="API up",
        )
        assert process.poll() is None, log.read_text()
    except BaseException:
        process.kill()
        raise
    return Api(url, redis_url, prefix, process, log)


def stop(api: Api) -> None:
    api.process.terminate()
    try:
        api.process.wait(15)
    except subprocess.TimeoutExpired:
        api.process.kill()
        api.process.wait(5)


@pytest.fixture(scope="module")
def api(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """An open API (no tokens) with a small payload limit."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    running = start_api(
        tmp_path_factory.mktemp("api"),
        redis_server.url,
        prefix,
        "/readyz",
        CONVEYOR_MAX_PAYLOAD_BYTES="1024",
    )
    yield running
    stop(running)


@pytest.fixture(scope="module")
def secured_api(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    """An API that wants a bearer token: TOKEN may do anything, READ_TOKEN only read."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    running = start_api(
        tmp_path_factory.mktemp("api"),
        redis_server.url,
        prefix,
        "/readyz",
        CONVEYOR_API_TOKENS=TOKEN,
        CONVEYOR_API_READ_TOKENS=READ_TOKEN,
    )
    yield running
    stop(running)


@pytest.fixture(scope="module")
def api_without_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """An API whose Redis is a closed port: every job route answers 503."""
    running = start_api(
        tmp_path_factory.mktemp("api"),
        f"redis://127.0.0.1:{free_port()}/0",
        "nowhere",
        "/healthz",
    )
    yield running
    stop(running)


@pytest.fixture
def queue() -> str:
    """A queue name of the test's own."""
    return f"q{uuid.uuid4().hex[:10]}"
