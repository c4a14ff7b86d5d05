"""Closed by default: no token, no API (unless api_auth is none, which is said at start-up);
an empty tokens file is a start-up error (exit 2); /readyz shows its detail only to a
token; /metrics may need one; requests for a host not trusted are refused."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis
from redis.asyncio import Redis

from conveyor.api.app import create_app
from conveyor.api.trusted_hosts import HostRule, host_of
from conveyor.config import Settings
from conveyor.errors import ConfigError
from conveyor.store.keys import Keys
from conveyor.store.workers import WorkerRegistry
from tests.api.conftest import app_client, assert_problem, make_settings
from tests.helpers import seed
from tests.helpers.redis_server import RedisServer

pytestmark = pytest.mark.anyio

FULL = "closed-full-token-0123456789"
READ = "closed-read-token-0123456789"
RUN = "from api.cli import api_command; api_command(prog_name='conveyor api')"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- start-up --------------------------------------------------------------------------------


def test_no_token_in_token_mode_refuses_to_build_the_app(redis_url: str, prefix: str) -> None:
    settings = make_settings(redis_url, prefix, api_auth="token")
    with pytest.raises(ConfigError) as info:
        create_app(settings)
    message = str(info.value)
    assert "no token is configured" in message
    assert "CONVEYOR_API_AUTH=none" in message
    assert "CONVEYOR_API_TOKENS" in message


@pytest.mark.parametrize("text", ["", "\n\n", "# a comment\n  # another\n\n"])
def test_a_tokens_file_without_a_token_is_a_config_error(
    redis_url: str, prefix: str, tmp_path: Path, text: str
) -> None:
    path = tmp_path / "tokens"
    path.write_text(text)
    for extra in ({}, {"api_tokens": (FULL,)}):  # even beside other tokens: a mistake
        with pytest.raises(ConfigError) as info:
            create_app(make_settings(redis_url, prefix, api_tokens_file=str(path), **extra))
        assert f"api_tokens_file {path}: holds no token" in str(info.value)


async def test_an_open_api_says_so_when_it_starts(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="conveyor.api")
    async with app_client(make_settings(redis_url, prefix)) as client:
        assert (await client.get("/jobs")).status_code == 200
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("open to anyone who reaches it" in r.getMessage() for r in warnings)


async def test_a_closed_api_does_not_warn_it_is_open(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="conveyor.api")
    async with app_client(make_settings(redis_url, prefix, api_tokens=(FULL,))) as client:
        assert (await client.get("/jobs")).status_code == 401
    assert not any("open to anyone" in r.getMessage() for r in caplog.records)


def _run_api(redis_url: str, prefix: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    environ.update(CONVEYOR_REDIS_URL=redis_url, CONVEYOR_KEY_PREFIX=prefix, **env)
    return subprocess.run(
        [sys.executable, "-c", RUN, "--host", "127.0.0.1", "--port", "0"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("content", ["", "# only a comment\n"])
def test_conveyor_api_exits_2_on_a_tokens_file_without_a_token(
    redis_url: str, prefix: str, tmp_path: Path, content: str
) -> None:
    path = tmp_path / "tokens"
    path.write_text(content)
    done = _run_api(redis_url, prefix, CONVEYOR_API_TOKENS_FILE=str(path))
    assert done.returncode == 2, done.stderr
    assert "invalid configuration" in done.stderr
    assert f"api_tokens_file {path}: holds no token" in done.stderr
    assert "Traceback" not in done.stderr


def test_conveyor_api_exits_2_without_any_token(redis_url: str, prefix: str) -> None:
    done = _run_api(redis_url, prefix)
    assert done.returncode == 2, done.stderr
    assert "no token is configured" in done.stderr
    assert "CONVEYOR_API_AUTH=none" in done.stderr
    assert "Traceback" not in done.stderr


# -- /readyz detail --------------------------------------------------------------------------


@pytest.fixture
async def busy(r: Redis, keys: Keys) -> None:
    """A live worker and a queue with a waiting job: what the detail would show."""
    await seed.enqueue(seed.producer_store(r, keys), queue="secret-queue")
    info: dict[str, str | int | float] = {
        "host": "db-host-7",
        "pid": 4242,
        "queues": "secret-queue",
        "concurrency": 1,
        "in_flight": 0,
        "processed": 0,
        "failed": 0,
        "started_at": 1_700_000_000_000,
    }
    await WorkerRegistry(r, keys).beat("worker-1", info, 60)


def _assert_no_detail(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready"}
    assert "secret-queue" not in response.text
    assert "db-host-7" not in response.text


async def test_readyz_without_a_token_only_says_ready(
    redis_url: str, prefix: str, busy: None
) -> None:
    settings = make_settings(redis_url, prefix, api_tokens=(FULL,), api_read_tokens=(READ,))
    async with app_client(settings) as client:
        # /readyz shows the queue statistics this process last read; GET /queues reads them.
        assert (await client.get("/queues", headers=bearer(READ))).status_code == 200
        _assert_no_detail(await client.get("/readyz"))
        _assert_no_detail(await client.get("/readyz", headers=bearer("not-a-valid-token-123")))
        for token in (READ, FULL):
            detailed = await client.get("/readyz", headers=bearer(token))
            assert detailed.status_code == 200
            body = detailed.json()
            assert body["status"] == "ready"
            assert {"workers", "queues", "warnings"} <= body.keys()
            assert "secret-queue" in [q["name"] for q in body["queues"]]
            assert [w["host"] for w in body["workers"]] == ["db-host-7"]


async def test_an_open_api_shows_the_readyz_detail(redis_url: str, prefix: str, busy: None) -> None:
    async with app_client(make_settings(redis_url, prefix)) as client:
        assert (await client.get("/queues")).status_code == 200
        body = (await client.get("/readyz")).json()
    assert "secret-queue" in [q["name"] for q in body["queues"]]


# -- /metrics --------------------------------------------------------------------------------


async def test_metrics_need_a_token_when_metrics_auth_is_token(redis_url: str, prefix: str) -> None:
    settings = make_settings(
        redis_url, prefix, api_tokens=(FULL,), api_read_tokens=(READ,), metrics_auth="token"
    )
    async with app_client(settings) as client:
        assert_problem(await client.get("/metrics"), 401)
        assert_problem(await client.get("/metrics", headers=bearer("wrong-token-0123456789")), 401)
        for token in (READ, FULL):
            response = await client.get("/metrics", headers=bearer(token))
            assert response.status_code == 200
            assert "conveyor_http_requests_total" in response.text
        assert (await client.get("/healthz")).status_code == 200  # the probes stay open


async def test_metrics_are_open_by_default(redis_url: str, prefix: str) -> None:
    settings = make_settings(redis_url, prefix, api_tokens=(FULL,))
    assert settings.metrics_auth == "none"
    async with app_client(settings) as client:
        assert (await client.get("/metrics")).status_code == 200


# -- trusted hosts ---------------------------------------------------------------------------


def trusted(redis_url: str, prefix: str) -> Settings:
    return make_settings(redis_url, prefix, trusted_hosts=("api.example.com", "*.corp.example"))


@pytest.mark.parametrize(
    "host", ["api.example.com", "API.example.com:8000", "x.corp.example", "a.b.corp.example:1"]
)
async def test_a_trusted_host_is_served(redis_url: str, prefix: str, host: str) -> None:
    async with app_client(trusted(redis_url, prefix)) as client:
        assert (await client.get("/jobs", headers={"Host": host})).status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "corp.example", "xcorp.example", "api.example.com.evil", "127.0.0.1"]
)
async def test_another_host_is_400_and_changes_nothing(
    redis_url: str, prefix: str, host: str, r: Redis
) -> None:
    async with app_client(trusted(redis_url, prefix)) as client:
        response = await client.get("/jobs", headers={"Host": host})
        problem = assert_problem(response, 400)
        assert problem["type"] == "urn:conveyor:problem:untrusted-host"
        assert "Host" in str(problem["detail"])
        created = await client.post("/jobs", json={"type": "t"}, headers={"Host": host})
        assert_problem(created, 400)
    assert [k async for k in r.scan_iter(match=f"{prefix}:*")] == []


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_probes_and_metrics_answer_any_host(redis_url: str, prefix: str, path: str) -> None:
    async with app_client(trusted(redis_url, prefix)) as client:
        assert (await client.get(path, headers={"Host": "10.1.2.3:8000"})).status_code == 200


async def test_no_trusted_hosts_means_any_host(redis_url: str, prefix: str) -> None:
    async with app_client(make_settings(redis_url, prefix)) as client:
        assert (await client.get("/jobs", headers={"Host": "whatever.example"})).status_code == 200


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"api.example.com:8000", "api.example.com"),
        (b"[::1]:8000", "[::1]"),
        (b"[::1]", "[::1]"),
        (b"Example.COM", "example.com"),
        (b"", ""),
    ],
)
def test_host_of(raw: bytes, expected: str) -> None:
    assert host_of({"headers": [(b"host", raw)]}) == expected


def test_host_rule() -> None:
    rule = HostRule(["api.example.com", "*.example.org", "[::1]", "10.0.0.1"])
    assert rule.allows("api.example.com")
    assert rule.allows("a.example.org")
    assert not rule.allows("example.org")
    assert not rule.allows("aexample.org")
    assert rule.allows("[::1]")
    assert rule.allows("10.0.0.1")
    assert not rule.allows("")
    assert not HostRule([]).allows("api.example.com")


async def test_an_unsafe_redis_is_named_only_to_a_token(tmp_path: Path, prefix: str) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=True)
    server.start()
    try:
        with redis.Redis(port=server.port) as admin:
            admin.config_set("maxmemory-policy", "allkeys-lru")
        async with app_client(make_settings(server.url, prefix, api_tokens=(FULL,))) as client:
            anonymous = assert_problem(await client.get("/readyz"), 503)
            assert anonymous["type"] == "urn:conveyor:problem:redis-unsafe"
            assert "maxmemory" not in str(anonymous["detail"])
            detailed = assert_problem(await client.get("/readyz", headers=bearer(FULL)), 503)
            assert "maxmemory-policy is allkeys-lru" in str(detailed["detail"])
    finally:
        server.kill()
