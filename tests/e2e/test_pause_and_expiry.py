"""Pause, resume and expiry with the real processes: an API, a scheduler and worker
processes against a real Redis, under load."""

from __future__ import annotations

import signal
import time
from typing import Any

import httpx
import pytest
from redis import Redis

from tests.e2e.system import System
from tests.helpers.http import JSON
from tests.helpers.wait import eventually

pytestmark = pytest.mark.e2e
Q = "gated"
HOLD_SECONDS = 5.0


def queue(system: System) -> dict[str, Any]:
    response = httpx.get(f"{system.api}/queues/{Q}", headers=system.headers, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def action(system: System, verb: str) -> dict[str, Any]:
    response = httpx.post(
        f"{system.api}/queues/{Q}/{verb}", headers={**system.headers, **JSON}, timeout=10
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def post_batch(system: System, jobs: list[dict[str, Any]]) -> list[str]:
    response = httpx.post(
        f"{system.api}/jobs/batch", json={"jobs": jobs}, headers=system.headers, timeout=10
    )
    assert response.status_code == 201, response.text
    return [j["id"] for j in response.json()["jobs"]]


def starts(system: System) -> dict[str, float]:
    """Job id -> when its first attempt started, from the ledger."""
    out: dict[str, float] = {}
    for line in system.ledger_lines():
        if line["event"] in ("start", "fail"):
            out.setdefault(line["job_id"], line["t"])
    return out


def command_calls(r: Redis, command: str) -> int:
    stats: Any = r.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def test_a_paused_queue_starts_nothing_under_load_and_drains_on_resume(
    system: System, redis_url: str
) -> None:
    r = Redis.from_url(redis_url)
    system.start_api()
    system.start("scheduler")
    for _ in range(2):
        system.start("worker", CONVEYOR_QUEUES=Q, CONVEYOR_CONCURRENCY="4")
    running = post_batch(system, [{"type": "test.record", "queue": Q, "payload": {"ms": 1500}}] * 8)
    eventually(lambda: set(running) <= set(starts(system)), timeout=20, what="8 jobs running")

    assert action(system, "pause")["paused"] is True
    paused_at = time.time()
    load: list[str] = []
    due_later = post_batch(
        system, [{"type": "test.record", "queue": Q, "delay_seconds": 1}] * 5
    )  # promoted by the scheduler during the pause: they wait as pending
    reads_before = command_calls(r, "xreadgroup")
    while time.time() - paused_at < HOLD_SECONDS:
        load += post_batch(system, [{"type": "test.record", "queue": Q}] * 50)
        started = set(starts(system))
        assert not started & {*load, *due_later}, "a job of the paused queue started"
        time.sleep(0.25)
    scripts_at = command_calls(r, "evalsha")
    time.sleep(2)  # idle workers on a paused queue: a bounded, low rate of calls
    idle_scripts = command_calls(r, "evalsha") - scripts_at
    assert command_calls(r, "xreadgroup") == reads_before  # the paused stream was never read
    assert idle_scripts <= 20, f"{idle_scripts} script calls in 2 s by idle workers"

    for job_id in running:  # the jobs running when the pause came finished
        assert system.get_job(job_id)["status"] == "completed"
    assert not set(starts(system)) & {*load, *due_later}
    stats = queue(system)
    assert stats["paused"] is True
    assert stats["waiting"] == len(load) + len(due_later)
    assert stats["scheduled"] == 0
    assert system.get_job(due_later[0])["status"] == "pending"

    assert action(system, "resume")["paused"] is False
    resumed_at = time.time()
    everything = {*load, *due_later}
    eventually(lambda: everything <= set(starts(system)), timeout=60, what="the backlog drained")
    first = min(t for job_id, t in starts(system).items() if job_id in everything)
    assert first - resumed_at < 2.5, "the workers did not see the resume within a second"
    for job_id in (load[0], load[-1], due_later[-1]):
        assert system.wait_status(job_id, "completed")["attempts"] == 1
    r.close()


def test_a_pause_outlives_restarts_of_every_process(system: System) -> None:
    system.start_api()
    system.start("worker", CONVEYOR_QUEUES=Q)
    [warm] = post_batch(system, [{"type": "test.record", "queue": Q}])
    system.wait_status(warm, "completed")
    action(system, "pause")
    for p in list(system.processes):
        p.signal(signal.SIGKILL)
        p.wait(10)
    system.processes.clear()

    system.start_api()
    worker = system.start("worker", CONVEYOR_QUEUES=Q)
    worker.wait_logged("worker started")
    [held] = post_batch(system, [{"type": "test.record", "queue": Q}])
    assert queue(system)["paused"] is True
    deadline = time.time() + 2
    while time.time() < deadline:
        assert held not in starts(system)
        time.sleep(0.2)
    assert system.get_job(held)["status"] == "pending"
    action(system, "resume")
    system.wait_status(held, "completed", timeout=10)


def test_an_expired_job_never_starts_from_the_stream(system: System, redis_url: str) -> None:
    r = Redis.from_url(redis_url)
    system.start_api()
    doomed = system.post_job("test.record", queue=Q, expire_after_seconds=0.3)
    expires_at = int(r.hget(f"{system.prefix}:{{{Q}}}:job:{doomed['id']}", "expires_at") or 0)

    def redis_past_expiry() -> bool:
        seconds, micros = r.time()
        return seconds * 1000 + micros // 1000 > expires_at

    eventually(redis_past_expiry, timeout=5, what="the expiry passed")
    system.start("worker", CONVEYOR_QUEUES=Q)
    fresh = system.post_job("test.record", queue=Q, expire_after_seconds=3600)
    system.wait_status(fresh["id"], "completed")
    ended = system.wait_status(doomed["id"], "expired")
    assert (ended["attempts"], ended["started_at"], ended["history"]) == (0, None, [])
    assert ended["finished_at"] is not None
    assert doomed["id"] not in starts(system)
    assert queue(system)["expired"] == 1
    r.close()


def test_a_job_expiring_during_its_retry_backoff_is_never_retried(system: System) -> None:
    slow_retries = {
        "CONVEYOR_RETRY_BASE_SECONDS": "2.5",
        "CONVEYOR_RETRY_MAX_SECONDS": "2.5",
        "CONVEYOR_RETRY_JITTER": "none",
    }
    system.start_api()
    system.start("scheduler")
    system.start("worker", CONVEYOR_QUEUES=Q, **slow_retries)
    job = system.post_job(
        "test.fail_times",
        {"times": 1},
        queue=Q,
        max_attempts=3,
        expire_after_seconds=1.5,
    )
    system.wait_status(job["id"], "retrying")
    ended = system.wait_status(job["id"], "expired", timeout=15)
    assert ended["attempts"] == 1
    assert [h["outcome"] for h in ended["history"]] == ["failed"]
    lines = [line for line in system.ledger_lines() if line["job_id"] == job["id"]]
    assert [line["event"] for line in lines] == ["fail"]  # the retry never ran
