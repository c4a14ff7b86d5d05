"""A real `conveyor worker` with CONVEYOR_METRICS_PORT set serves its probes."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.system import System
from tests.helpers.redis_server import free_port
from tests.helpers.wait import eventually
from tests.metrics.support import value

pytestmark = pytest.mark.e2e


def test_worker_process_serves_metrics_and_probes(system: System) -> None:
    port = free_port()
    system.start("worker", CONVEYOR_METRICS_PORT=str(port))
    base = f"http://127.0.0.1:{port}"

    def answers(path: str) -> httpx.Response | None:
        try:
            response = httpx.get(f"{base}{path}", timeout=2)
        except httpx.HTTPError:
            return None
        return response if response.status_code == 200 else None

    eventually(lambda: answers("/readyz"), timeout=20, what="worker ready")
    system.start_api()
    job = system.post_job("test.record", {"ms": 1})
    system.wait_status(job["id"], "completed")

    def completed() -> float:
        response = answers("/metrics")
        if response is None:
            return 0.0
        return value(
            response.text, "conveyor_jobs_completed_total", queue="default", type="test.record"
        )

    assert eventually(completed, timeout=10, what="completion counted") == 1
    health = answers("/healthz")
    assert health is not None
    assert health.json() == {"status": "ok"}
    text = answers("/metrics")
    assert text is not None
    assert value(text.text, "conveyor_worker_concurrency") >= 1
