"""Finding 2, 3 and 6 of the hardening review, replayed as attacks on a real `conveyor api`
process: a cross-site form POST (purge, retry-failed, retry, cancel) is refused with 415
and changes nothing in either auth mode; a tokens file with no token stops the API
(exit 2) instead of leaving it open; without a token /readyz tells nothing about workers or
queues; a rebound Host is refused."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis

from tests.e2e.system import CONVEYOR, System
from tests.helpers.http import JSON
from tests.helpers.redis_server import RedisServer

pytestmark = pytest.mark.e2e

TOKEN = "security-test-token-0123456789"
EVIL = {"Origin": "https://evil.example"}
FORM = {**EVIL, "Content-Type": "application/x-www-form-urlencoded"}


def dump(r: Redis, prefix: str) -> dict[bytes, bytes | None]:
    """Every key of the prefix with its serialized value: any write shows."""
    return {key: r.dump(key) for key in r.scan_iter(match=f"{prefix}:*", count=1000)}


@pytest.fixture(params=["none", "token"])
def system(
    request: pytest.FixtureRequest, redis_server: RedisServer, tmp_path: Path
) -> Iterator[System]:
    env = {"CONVEYOR_API_TOKENS": TOKEN} if request.param == "token" else {}
    deployment = System(redis_server.url, f"s{uuid.uuid4().hex[:10]}", tmp_path, env_overrides=env)
    deployment.token = TOKEN if request.param == "token" else None
    try:
        deployment.start_api()
        yield deployment
    finally:
        deployment.stop_all()


def test_cross_site_forms_change_nothing(system: System, redis_server: RedisServer) -> None:
    # One job of each kind the actions act on: canceled, and two waiting ones.
    ids = [system.post_job("echo", i)["id"] for i in range(3)]
    canceled = httpx.delete(
        f"{system.api}/jobs/{ids[0]}", headers={**system.headers, **JSON}, timeout=10
    )
    assert canceled.status_code == 200
    r = Redis(port=redis_server.port)
    before = dump(r, system.prefix)
    attacks = [
        ("POST", "/queues/default/purge?status=canceled"),
        ("POST", "/queues/default/retry-failed"),
        ("POST", f"/jobs/{ids[0]}/retry"),
        ("DELETE", f"/jobs/{ids[1]}"),
    ]
    # The form as the browser of a victim would send it: with the victim's token or without.
    for auth in ({}, system.headers):
        for headers in (FORM, {**EVIL, "Content-Type": "text/plain"}, EVIL):
            for method, path in attacks:
                response = httpx.request(
                    method, f"{system.api}{path}", headers={**headers, **auth}, content="x=1",
                    timeout=10,
                )  # fmt: skip
                assert response.status_code == 415, (method, path, response.text)
                assert response.headers["content-type"] == "application/problem+json"
    assert dump(r, system.prefix) == before
    # The API's own clients send JSON, and the very same purge works for them.
    purged = httpx.post(
        f"{system.api}/queues/default/purge?status=canceled",
        headers={**system.headers, **JSON},
        timeout=10,
    )
    assert purged.status_code == 200
    assert purged.json()["purged"] == 1
    r.close()


def test_readyz_tells_an_anonymous_caller_nothing_but_ready(system: System) -> None:
    system.post_job("echo", 1, queue="internal-billing")
    # /readyz shows the queue statistics the API last read; GET /queues reads them.
    assert httpx.get(f"{system.api}/queues", headers=system.headers, timeout=10).status_code == 200
    anonymous = httpx.get(f"{system.api}/readyz", timeout=10)
    assert anonymous.status_code == 200
    if system.token:
        assert anonymous.json() == {"status": "ready"}
        detailed = httpx.get(f"{system.api}/readyz", headers=system.headers, timeout=10).json()
    else:  # an open API shows everything to everyone: that is what api_auth none means
        detailed = anonymous.json()
    assert "internal-billing" in [q["name"] for q in detailed["queues"]]


@pytest.mark.parametrize("content", ["", "# the token goes here\n"])
def test_a_tokens_file_without_a_token_stops_the_api(
    redis_server: RedisServer, tmp_path: Path, content: str
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(content)
    system = System(
        redis_server.url,
        "unused",
        tmp_path,
        env_overrides={"CONVEYOR_API_TOKENS_FILE": str(tokens)},
    )
    done = _api_refuses_to_start(system)
    assert "holds no token" in done.stderr


def _api_refuses_to_start(system: System) -> subprocess.CompletedProcess[str]:
    """`conveyor api` run to its end: it must exit 2 (a configuration error)."""
    done = subprocess.run(
        [CONVEYOR, "api", "--port", "0"],
        env=system.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    return done


def test_no_token_at_all_stops_the_api(redis_server: RedisServer, tmp_path: Path) -> None:
    system = System(
        redis_server.url, "unused", tmp_path, env_overrides={"CONVEYOR_API_AUTH": "token"}
    )
    done = _api_refuses_to_start(system)
    assert "CONVEYOR_API_AUTH=none" in done.stderr


def test_an_open_api_warns_at_start_up(redis_server: RedisServer, tmp_path: Path) -> None:
    system = System(redis_server.url, f"s{uuid.uuid4().hex[:10]}", tmp_path)
    try:
        process = system.start_api()
    finally:
        system.stop_all()  # the log is complete once the process has exited
    assert "open to anyone who reaches it" in process.log_path.read_text()


def test_a_rebound_host_is_refused(redis_server: RedisServer, tmp_path: Path) -> None:
    system = System(
        redis_server.url,
        f"s{uuid.uuid4().hex[:10]}",
        tmp_path,
        env_overrides={"CONVEYOR_TRUSTED_HOSTS": "127.0.0.1,conveyor.internal"},
    )
    try:
        system.start_api()
        rebound = httpx.get(f"{system.api}/jobs", headers={"Host": "attacker.example"}, timeout=10)
        assert rebound.status_code == 400
        assert rebound.json()["type"] == "urn:conveyor:problem:untrusted-host"
        assert httpx.get(f"{system.api}/jobs", timeout=10).status_code == 200
        probe = httpx.get(f"{system.api}/healthz", headers={"Host": "10.0.0.7"}, timeout=10)
        assert probe.status_code == 200
    finally:
        system.stop_all()
