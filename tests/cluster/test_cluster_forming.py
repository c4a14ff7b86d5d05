"""`conveyor api`, `worker` and `scheduler` started before their Redis Cluster is formed.

The nodes run but serve no slot; then they are joined (``redis-cli --cluster create``),
which passes through states where nodes answer ``CLUSTERDOWN`` until every slot is
covered. All along the API answers 503 problem+json with ``Retry-After``, never a 500;
once the cluster is up it creates and reads jobs, and the worker, which kept retrying,
runs them, as the scheduler promotes a delayed one.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.servers import LocalCluster
from tests.e2e.system import System
from tests.helpers.redis_server import free_port
from tests.helpers.wait import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def unformed(tmp_path: Path) -> Iterator[LocalCluster]:
    """Three cluster-enabled nodes, started but not joined."""
    local = LocalCluster(tmp_path / "cluster")
    try:
        local.start_nodes()
        yield local
    finally:
        local.stop()


def _answers(api: str, queue: str) -> list[httpx.Response]:
    """One of each kind of request, as clients send them."""
    with httpx.Client(base_url=api, timeout=10) as client:
        return [
            client.post("/jobs", json={"type": "echo", "payload": {"n": 1}, "queue": queue}),
            client.get("/jobs/01JD0V6Q0N8X4W2M3Y5Z7A9B1C"),
            client.get("/queues"),
            client.get("/readyz"),
        ]


def _check_not_serving(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.request.url, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"


def test_api_answers_503_until_the_cluster_is_formed_then_serves(
    unformed: LocalCluster, prefix: str, tmp_path: Path
) -> None:
    system = System(unformed.url, prefix, tmp_path, env_overrides={"CONVEYOR_API_AUTH": "none"})
    queue = f"q{uuid.uuid4().hex[:8]}"
    try:
        system.api_port = free_port()
        api = system.start("api", "--port", str(system.api_port))
        worker = system.start("worker", CONVEYOR_QUEUES=queue)
        scheduler = system.start("scheduler")

        def alive() -> bool:
            try:
                return httpx.get(f"{system.api}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        eventually(alive, timeout=20, what="API process up")
        for response in _answers(system.api, queue):  # nodes up, no slot served
            _check_not_serving(response)

        # Join the nodes while requests keep coming: every answer is a 503 or a success.
        seen: Counter[int] = Counter()
        formed = threading.Event()

        def form() -> None:
            unformed.form()
            formed.set()

        former = threading.Thread(target=form, daemon=True)
        former.start()
        created: list[str] = []
        deadline = time.monotonic() + 60
        while not created and time.monotonic() < deadline:
            for response in _answers(system.api, queue):
                seen[response.status_code] += 1
                if response.status_code == 503:
                    _check_not_serving(response)
                else:
                    assert response.status_code in (200, 201, 404), response.text
                    if response.request.method == "POST":
                        created.append(response.json()["id"])
            time.sleep(0.05)
        former.join(60)
        assert formed.is_set(), "the cluster did not form"
        assert created, f"no job created once formed (answers: {dict(seen)})"
        assert 500 not in seen

        job_id = created[0]
        response = httpx.get(f"{system.api}/jobs/{job_id}", timeout=10)
        assert response.status_code == 200, response.text
        delayed = system.post_job("echo", "later", queue=queue, delay_seconds=0.3)["id"]

        def completed(job: str) -> bool:
            got = httpx.get(f"{system.api}/jobs/{job}", timeout=10).json()
            return bool(got["status"] == "completed")

        # Run by the worker, and (the delayed one) promoted by the scheduler, both started
        # before the cluster was formed.
        eventually(lambda: completed(job_id), timeout=30, what="the job completed")
        eventually(lambda: completed(delayed), timeout=30, what="the delayed job completed")
        assert api.popen.poll() is None
        assert worker.popen.poll() is None
        assert scheduler.popen.poll() is None
    finally:
        system.stop_all()
    for process in system.processes:
        text = process.log_path.read_text()
        assert "Traceback" not in text, f"{process.role} logged a traceback:\n{text[-3000:]}"
