"""T10: Redis settings that can lose jobs are caught before jobs are lost.

A redis-server is started with one dangerous setting, then the API, a worker and a
scheduler against it:

- `maxmemory-policy allkeys-lru` (Redis may evict job hashes and streams when full): the
  API's `/readyz` answers 503 problem+json naming `maxmemory-policy`, and the worker's
  startup log has a warning (or error) naming `maxmemory-policy`;
- `appendonly no` (a Redis restart loses every job): the worker's startup log has a
  warning naming `appendonly`; this is a warning only, so `/readyz` stays 200;
- control, `noeviction` and `appendonly yes`: `/readyz` 200 and no such warning, so the
  checks above can tell a sound server from a dangerous one.

Pass: exactly the expected readiness and the expected settings named in the worker's
startup warnings, for each of the three servers; the scheduler's start-up warnings name
the same settings (the runbook says schedulers check both at start too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis

from tests.e2e.system import Process, System
from tests.faults.conftest import MakeRedis, MakeSystem
from tests.faults.harness import redisio
from tests.faults.harness.recorder import Figures, Recorder
from tests.helpers.redis_server import free_port
from tests.helpers.wait import eventually

pytestmark = pytest.mark.faults

SETTINGS = ("maxmemory-policy", "appendonly")  # what the guard checks
STARTUP_SECONDS = 45.0  # process start-up on a shared 2-core machine
LOUD = ("WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    policy: str  # maxmemory-policy
    appendonly: bool
    ready: int  # the status /readyz must answer
    named: frozenset[str]  # settings the worker's startup warnings must name, and no other


CASES = [
    Case("eviction", "allkeys-lru", True, 503, frozenset({"maxmemory-policy"})),
    Case("aof-off", "noeviction", False, 200, frozenset({"appendonly"})),
    Case("sound", "noeviction", True, 200, frozenset()),
]


def start_api(system: System) -> Process:
    """The API, waited for until it is alive (`/healthz`): unlike `System.start_api` this
    does not wait for `/readyz` to answer 200, which it must not do here."""
    system.api_port = free_port()
    process = system.start("api", "--port", str(system.api_port))

    def alive() -> bool:
        try:
            return httpx.get(f"{system.api}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    eventually(alive, timeout=STARTUP_SECONDS, what="API alive")
    return process


def startup_log(process: Process, started: str) -> list[dict[str, Any]]:
    """The process's log once its start-up is over: it logged `started`, or it exited
    (refusing to run is a fair answer to a dangerous setting)."""

    def done() -> tuple[list[dict[str, Any]]] | None:
        exited = process.popen.poll() is not None
        lines = process.log_lines()
        if exited or any(line.get("msg") == started for line in lines):
            return (lines,)
        return None

    (lines,) = eventually(done, timeout=STARTUP_SECONDS, what=f"{process.role} start-up")
    return lines


def warnings_in(lines: list[dict[str, Any]], started: str) -> list[str]:
    """Messages of the WARNING or worse lines logged before `started` (the start-up)."""
    found: list[str] = []
    for line in lines:
        if line.get("msg") == started:
            break
        if line.get("level") in LOUD:
            found.append(str(line.get("msg", "")))
    return found


def server_config(r: redis.Redis) -> dict[str, str]:
    """The settings the guard checks, as the server reports them (CONFIG GET)."""
    found: dict[str, str] = {}
    for setting in SETTINGS:
        reply: Any = r.config_get(setting)
        for key, value in reply.items():
            found[_text(key)] = _text(value)
    return found


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def named(messages: list[str]) -> set[str]:
    return {setting for setting in SETTINGS for m in messages if setting in m}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_config_guard(
    make_redis: MakeRedis, make_system: MakeSystem, recorder: Recorder, case: Case
) -> None:
    server = make_redis(appendonly=case.appendonly, extra=["--maxmemory-policy", case.policy])
    actual = server_config(redisio.client(server.url))
    system = make_system(server.url)
    start_api(system)
    worker = system.start("worker")
    scheduler = system.start("scheduler")
    worker_lines = startup_log(worker, "worker started")
    scheduler_lines = startup_log(scheduler, "scheduler started")
    response = httpx.get(f"{system.api}/readyz", timeout=10)
    worker_warnings = warnings_in(worker_lines, "worker started")
    scheduler_warnings = warnings_in(scheduler_lines, "scheduler started")
    recorder.record(
        Figures(
            scenario="T10 config guard",
            jobs=0,
            faults=f"redis-server with maxmemory-policy {case.policy}, "
            f"appendonly {'yes' if case.appendonly else 'no'}",
            lost=0,
            duplicated=0,
            explained=0,
            details={
                "redis_config": actual,
                "readyz_status": response.status_code,
                "readyz_content_type": response.headers.get("content-type", ""),
                "readyz_body": response.text[:500],
                "worker_startup_warnings": worker_warnings,
                "worker_exit_code": worker.popen.poll(),
                "scheduler_startup_warnings": scheduler_warnings,
            },
        )
    )
    assert actual == {
        "maxmemory-policy": case.policy,
        "appendonly": "yes" if case.appendonly else "no",
    }, "redis-server did not take the setting under test"
    assert response.status_code == case.ready, response.text
    if case.ready == 503:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "maxmemory-policy" in response.text
    assert named(worker_warnings) == case.named, worker_warnings
    assert named(scheduler_warnings) == case.named, scheduler_warnings
