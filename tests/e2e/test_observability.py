"""A full run watched the way an operator would: logs, metrics and readiness.

API + two workers + scheduler against a password-protected Redis, with API tokens on.
One job, created with a correlation id, fails once and then succeeds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.system import System
from tests.helpers.redis_server import RedisServer, free_port
from tests.helpers.wait import eventually

pytestmark = pytest.mark.e2e

PASSWORD = "pw-canary-7f3a9c2e51"
TOKEN = "token-canary-4b8d0e6f2a9c1357"


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of metric `name` by its sorted labels."""
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text, name).get(tuple(sorted(labels.items())), 0.0)


@pytest.fixture
def secured(tmp_path: Path, prefix: str) -> Iterator[tuple[System, RedisServer]]:
    server = RedisServer(tmp_path / "redis", password=PASSWORD)
    server.start()
    url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
    deployment = System(url, prefix, tmp_path, token=TOKEN)
    # DEBUG: the per-job lines (claim, promotion) are written too, and must carry the ids.
    deployment.env_overrides = {"CONVEYOR_API_TOKENS": TOKEN, "CONVEYOR_LOG_LEVEL": "DEBUG"}
    yield deployment, server
    deployment.stop_all()
    server.stop()


def test_logs_metrics_and_readiness_of_a_full_run(secured: tuple[System, RedisServer]) -> None:
    system, server = secured
    worker_ports = [free_port(), free_port()]
    system.start_api()
    workers = [system.start("worker", CONVEYOR_METRICS_PORT=str(port)) for port in worker_ports]
    system.start("scheduler")
    for w in workers:
        w.wait_logged("worker started")

    response = httpx.post(
        f"{system.api}/jobs",
        json={"type": "fail", "payload": {"times": 1, "message": "first try fails"}},
        headers={**system.headers, "X-Correlation-ID": "abc"},
        timeout=10,
    )
    assert response.status_code == 201
    assert response.headers["x-correlation-id"] == "abc"
    job_id = response.json()["id"]
    done = system.wait_status(job_id, "completed")
    assert done["correlation_id"] == "abc"
    assert [h["outcome"] for h in done["history"]] == ["failed", "completed"]

    # Logs: every line of every process about the job carries its id and correlation id,
    # and each transition is logged once, by the process that made it.
    about_job = [
        (p.role, line)
        for p in system.processes
        for line in p.log_lines()
        if line.get("job_id") == job_id
    ]
    assert about_job
    assert all(line.get("correlation_id") == "abc" for _, line in about_job), about_job
    messages = [(role, line["msg"]) for role, line in about_job]
    assert messages.count(("api", "job created")) == 1  # -> pending
    assert messages.count(("worker", "job started")) == 2  # pending -> running, twice
    assert messages.count(("worker", "job failed; it will be retried")) == 1  # -> retrying
    assert messages.count(("scheduler", "job promoted")) == 1  # retrying -> pending
    assert messages.count(("worker", "job completed")) == 1  # -> completed

    # Metrics: the API counts creations; the workers count outcomes (summed over both).
    api_metrics = httpx.get(f"{system.api}/metrics", timeout=5).text  # no token needed
    assert value(api_metrics, "conveyor_jobs_created_total", queue="default", type="fail") == 1

    def worker_total(name: str) -> float:
        texts = [httpx.get(f"http://127.0.0.1:{p}/metrics", timeout=5).text for p in worker_ports]
        return sum(value(t, name, queue="default", type="fail") for t in texts)

    assert worker_total("conveyor_jobs_retried_total") == 1
    assert worker_total("conveyor_jobs_completed_total") == 1
    assert worker_total("conveyor_jobs_failed_total") == 0
    for port in worker_ports:
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200

    # Readiness shows both workers, and flags a queue that nobody consumes.
    system.post_job("echo", 1, queue="orphans")

    def ready_body() -> dict[str, Any] | None:
        # /readyz shows the queue statistics last read (here by /metrics), never reads them.
        httpx.get(f"{system.api}/metrics", timeout=5)
        r = httpx.get(f"{system.api}/readyz", headers=system.headers, timeout=5)
        body: dict[str, Any] = r.json()
        flagged = any("orphans" in w for w in body.get("warnings", []))
        return body if r.status_code == 200 and len(body["workers"]) == 2 and flagged else None

    body = eventually(ready_body, timeout=10, what="both workers and orphans in /readyz")
    # Without the token, /readyz only says ready: no worker, host or queue.
    assert httpx.get(f"{system.api}/readyz", timeout=5).json() == {"status": "ready"}
    assert any("orphans" in w for w in body["warnings"]), body["warnings"]
    assert not any("'default'" in w for w in body["warnings"])

    # Redis goes away: /readyz says 503 (promptly); it comes back: 200 again, and the
    # workers run jobs again without being restarted.
    server.kill()
    started = time.monotonic()
    down = httpx.get(f"{system.api}/readyz", timeout=10)
    assert down.status_code == 503
    assert time.monotonic() - started < 5
    server.start()
    eventually(
        lambda: httpx.get(f"{system.api}/readyz", timeout=5).status_code == 200,
        timeout=15,
        what="/readyz back to 200",
    )
    again = system.post_job("echo", "after the restart")
    system.wait_status(again["id"], "completed", timeout=20)
    assert all(p.popen.poll() is None for p in system.processes)

    # No secret in any log line of the whole run.
    for p in system.processes:
        text = p.log_path.read_text()
        assert PASSWORD not in text, p.role
        assert TOKEN not in text, p.role
