"""The real processes end to end: a job's whole life over HTTP, against a real Redis."""

from __future__ import annotations

import signal
from collections import Counter

import httpx
import pytest

from tests.e2e.system import System
from tests.helpers.http import JSON
from tests.helpers.wait import eventually

pytestmark = pytest.mark.e2e


def test_jobs_complete_retry_fail_and_run_later(system: System) -> None:
    system.start_api()
    system.start("worker")
    system.start("scheduler")

    echo = system.post_job("echo", {"hello": ["world", 1]})
    assert echo["status"] == "pending"
    flaky = system.post_job("fail", {"times": 2, "message": "not yet"}, max_attempts=3)
    unknown = system.post_job("no.such.type")
    later = system.post_job("echo", "later", delay_seconds=0.5)
    assert later["status"] == "scheduled"

    done = system.wait_status(echo["id"], "completed")
    assert done["result"] == {"hello": ["world", 1]}
    assert done["attempts"] == 1
    assert [h["outcome"] for h in done["history"]] == ["completed"]

    flaky_done = system.wait_status(flaky["id"], "completed")
    assert flaky_done["attempts"] == 3
    assert flaky_done["result"] == {"attempt": 3}
    assert [h["outcome"] for h in flaky_done["history"]] == ["failed", "failed", "completed"]
    assert flaky_done["history"][0]["error"] == "RuntimeError: not yet"
    assert flaky_done["last_error"] == "RuntimeError: not yet"

    failed = system.wait_status(unknown["id"], "failed")
    assert failed["attempts"] == 1
    assert "no.such.type" in failed["last_error"]

    ran_later = system.wait_status(later["id"], "completed")
    assert ran_later["started_at"] >= ran_later["run_at"]


def test_exhausted_retries_end_failed(system: System) -> None:
    system.start_api()
    system.start("worker")
    system.start("scheduler")
    job = system.post_job("fail", {"times": 5, "message": "always"}, max_attempts=2)
    failed = system.wait_status(job["id"], "failed")
    assert failed["attempts"] == 2
    assert [h["outcome"] for h in failed["history"]] == ["failed", "failed"]


def test_cancel_pending_and_running_jobs(system: System) -> None:
    system.start_api()
    waiting = system.post_job("echo", 1)  # no worker yet: stays pending
    response = httpx.delete(f"{system.api}/jobs/{waiting['id']}", timeout=10, headers=JSON)
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    assert (
        httpx.delete(f"{system.api}/jobs/{waiting['id']}", timeout=10, headers=JSON).status_code
        == 409
    )

    system.start("worker")
    long = system.post_job("sleep", {"seconds": 60})
    system.wait_status(long["id"], "running")
    response = httpx.delete(f"{system.api}/jobs/{long['id']}", timeout=10, headers=JSON)
    assert response.status_code == 202
    assert response.json()["cancel_requested"] is True
    canceled = system.wait_status(long["id"], "canceled", timeout=3)
    assert canceled["history"][-1]["outcome"] == "canceled"


def test_sigkilled_worker_job_completes_on_another(system: System) -> None:
    system.start_api()
    first = system.start("worker")
    job = system.post_job("test.record", {"ms": 60_000})
    eventually(lambda: system.ledger_lines(), what="the first attempt started")
    first.kill()
    system.start("worker")
    # The handler sleeps for a minute; the reclaimed attempt must be stopped for the test
    # to end, so cancel it once the second worker runs it.
    eventually(lambda: system.get_job(job["id"])["attempts"] == 2, timeout=15, what="reclaimed")
    reclaimed = system.get_job(job["id"])
    assert reclaimed["status"] == "running"
    assert reclaimed["history"][0]["outcome"] == "lost and reclaimed"
    assert reclaimed["worker"] != reclaimed["history"][0]["worker"]
    starts = [line for line in system.ledger_lines() if line["event"] == "start"]
    assert [s["attempt"] for s in starts] == [1, 2]
    assert starts[0]["pid"] != starts[1]["pid"]


def test_sigkilled_worker_short_job_completes_once_more(system: System) -> None:
    system.start_api()
    first = system.start("worker")
    job = system.post_job("test.record", {"ms": 1500})
    eventually(lambda: system.ledger_lines(), what="the first attempt started")
    first.kill()
    system.start("worker")
    done = system.wait_status(job["id"], "completed", timeout=20)
    assert done["attempts"] == 2
    ends = [line for line in system.ledger_lines() if line["event"] == "end"]
    assert len(ends) == 1


def test_sigterm_returns_running_job_which_the_next_worker_completes(system: System) -> None:
    system.start_api()
    first = system.start("worker", CONVEYOR_SHUTDOWN_TIMEOUT_SECONDS="0.5")
    job = system.post_job("test.record", {"ms": 30_000})
    system.wait_status(job["id"], "running")
    first.signal(signal.SIGTERM)
    assert first.wait(timeout=5) == 0
    returned = system.get_job(job["id"])
    assert returned["status"] == "pending"
    assert returned["attempts"] == 0  # the interrupted attempt is not charged
    assert returned["history"][-1]["outcome"] == "returned at shutdown"

    system.start("worker")
    # Make the second run short: cancel is not wanted here, so patience instead.
    running = system.wait_status(job["id"], "running")
    assert running["attempts"] == 1
    assert running["worker"] != returned["history"][-1]["worker"]


def test_api_and_scheduler_stop_cleanly_on_sigterm(system: System) -> None:
    api = system.start_api()
    scheduler = system.start("scheduler")
    worker = system.start("worker")
    scheduler.wait_logged("scheduler started")
    worker.wait_logged("worker started")
    for p in (api, scheduler, worker):
        p.signal(signal.SIGTERM)
    assert api.wait(timeout=10) == 0
    assert scheduler.wait(timeout=10) == 0
    assert worker.wait(timeout=10) == 0


def test_three_schedulers_run_every_delayed_job_exactly_once(system: System) -> None:
    system.start_api()
    for _ in range(3):
        system.start("scheduler")
    system.start("worker")
    system.start("worker")
    ids = [
        system.post_job("test.record", {"ms": 0}, delay_seconds=0.2 + (i % 10) / 10)["id"]
        for i in range(150)
    ]

    def all_done() -> bool:
        ends = [line for line in system.ledger_lines() if line["event"] == "end"]
        return len(ends) >= len(ids)

    eventually(all_done, timeout=30, what="every delayed job ran")
    for job_id in ids[:20]:
        assert system.get_job(job_id)["status"] == "completed"
    runs = Counter(line["job_id"] for line in system.ledger_lines() if line["event"] == "start")
    assert set(runs) == set(ids)
    assert max(runs.values()) == 1
