"""T17: Redis authentication (password, ACL user), TLS, API tokens, and secrets.

Canary secrets (a Redis password, an ACL user's password, an API token, and a wrong
password) must never appear in any process's log, any HTTP answer, or `conveyor config`.
The ACL user may touch only the deployment's keys and channels, and the suite must run
without one NOPERM. TLS is tested against redis-server's own TLS listener with a CA made
for the test: the right CA works, another CA fails closed (503s, nothing processed).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.system import CONVEYOR, System
from tests.faults.conftest import MakeRedis, MakeSystem
from tests.faults.harness.recorder import Figures, Recorder
from tests.helpers.redis_server import free_port, make_tls_files
from tests.helpers.wait import eventually

pytestmark = pytest.mark.faults

PREFIX = "sec"


def canary(name: str) -> str:
    return f"canary-{name}-{uuid.uuid4().hex}"


def _config_output(system: System) -> str:
    done = subprocess.run(
        [CONVEYOR, "config"], env=system.env(), capture_output=True, timeout=30, check=False
    )
    return done.stdout.decode() + done.stderr.decode()


def _everything_said(system: System, extra: list[str]) -> str:
    logs = [p.log_path.read_text() for p in system.processes]
    return "\n".join([*logs, *extra])


def _run_jobs(system: System) -> list[str]:
    """API, worker and scheduler; one job now and one delayed: both complete."""
    system.start_api()
    system.start("worker")
    system.start("scheduler")
    now = system.post_job("echo", {"x": 1})
    later = system.post_job("echo", {"x": 2}, delay_seconds=0.3)
    bodies = []
    for job in (now, later):
        bodies.append(json.dumps(system.wait_status(job["id"], "completed", timeout=30)))
    return bodies


def _refusals(system: System) -> list[str]:
    """What the API answers when Redis refuses it: 503s, whose bodies are kept."""
    answers = [
        httpx.get(f"{system.api}/readyz", headers=system.headers, timeout=10),
        httpx.post(f"{system.api}/jobs", json={"type": "echo"}, headers=system.headers, timeout=10),
    ]
    assert [a.status_code for a in answers] == [503, 503]
    return [f"{a.headers}\n{a.text}" for a in answers]


def _start_api_unready(system: System) -> None:
    """An API whose Redis refuses it never becomes ready; start it and wait for its port."""
    system.api_port = free_port()
    system.start("api", "--port", str(system.api_port))

    def listening() -> bool:
        try:
            return httpx.get(f"{system.api}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    eventually(listening, timeout=30, what="API listening")


def test_password_acl_user_and_no_secret_anywhere(
    make_redis: MakeRedis, make_system: MakeSystem, recorder: Recorder
) -> None:
    password, acl_password, token, wrong = (canary(n) for n in ("pw", "acl", "token", "wrong"))
    server = make_redis(password=password)
    admin = redis.Redis(port=server.port, password=password)
    admin.acl_setuser(
        "conveyor-app",
        enabled=True,
        passwords=[f"+{acl_password}"],
        keys=[f"{PREFIX}*"],
        channels=[f"{PREFIX}*"],
        commands=["+@all", "-@dangerous", "+info", "+config|get"],
    )
    said: list[str] = []
    deployments: list[System] = []
    for url in (
        f"redis://:{password}@127.0.0.1:{server.port}/0",
        f"redis://conveyor-app:{acl_password}@127.0.0.1:{server.port}/0",
    ):
        system = make_system(url, CONVEYOR_API_TOKENS=token, CONVEYOR_REDIS_TIMEOUT_SECONDS="1")
        system.prefix = PREFIX if "conveyor-app" in url else system.prefix
        system.token = token
        deployments.append(system)
        said += _run_jobs(system)
        said.append(_config_output(system))
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": token}):
            refused = httpx.get(f"{system.api}/jobs", headers=headers, timeout=10)
            assert refused.status_code == 401
            assert token not in refused.text
            said.append(refused.text)

    wrong_system = make_system(
        f"redis://:{wrong}@127.0.0.1:{server.port}/0", CONVEYOR_REDIS_TIMEOUT_SECONDS="1"
    )
    deployments.append(wrong_system)
    _start_api_unready(wrong_system)
    said += _refusals(wrong_system)
    said.append(_config_output(wrong_system))

    text = "\n".join(_everything_said(s, []) for s in deployments) + "\n".join(said)
    secrets = {"password": password, "acl": acl_password, "token": token, "wrong": wrong}
    leaks = {name: text.count(secret) for name, secret in secrets.items()}
    noperm = text.count("NOPERM")
    recorder.record(
        Figures(
            scenario="T17 Redis password, ACL user, secrets",
            jobs=4,
            faults="requirepass; ACL user limited to its prefix; a wrong password; 401 probes",
            lost=0,
            duplicated=0,
            explained=0,
            details={"secret_occurrences": leaks, "noperm": noperm},
        )
    )
    assert leaks == {"password": 0, "acl": 0, "token": 0, "wrong": 0}
    assert noperm == 0
    admin.close()


def test_rediss_with_the_right_ca_works_and_another_ca_fails_closed(
    make_redis: MakeRedis, make_system: MakeSystem, tmp_path: Path, recorder: Recorder
) -> None:
    password = canary("tls")
    tls = make_tls_files(tmp_path / "tls")
    other = make_tls_files(tmp_path / "other", name="other-ca")
    server = make_redis(password=password, tls=tls)
    base = f"rediss://:{password}@127.0.0.1:{server.port}/0?ssl_cert_reqs=required"
    good = make_system(f"{base}&ssl_ca_certs={tls.ca}", CONVEYOR_REDIS_TIMEOUT_SECONDS="1")
    said = _run_jobs(good)
    said.append(_config_output(good))

    bad = make_system(f"{base}&ssl_ca_certs={other.ca}", CONVEYOR_REDIS_TIMEOUT_SECONDS="1")
    _start_api_unready(bad)
    said += _refusals(bad)
    worker = bad.start("worker")
    eventually(
        lambda: any(line.get("msg") == "waiting for redis" for line in worker.log_lines()),
        timeout=30,
        what="the worker refused the server's certificate",
    )
    text = _everything_said(good, said) + _everything_said(bad, [])
    recorder.record(
        Figures(
            scenario="T17 rediss:// (TLS listener)",
            jobs=2,
            faults="TLS with the right CA; another CA (must fail closed)",
            lost=0,
            duplicated=0,
            explained=0,
            details={"password_occurrences": text.count(password)},
        )
    )
    assert "certificate verify failed" in text
    assert text.count(password) == 0
