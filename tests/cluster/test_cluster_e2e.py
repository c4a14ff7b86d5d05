"""The real processes against a 3-master Redis Cluster, with queues on every master.

`conveyor api`, `worker` and `scheduler` run as subprocesses with a ``redis+cluster://``
URL naming the three nodes. Queue names are picked so that one queue lives on each master;
every test ends by checking that no node answered a CROSSSLOT error (INFO errorstats) and
that no process logged a slot error.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.servers import LocalCluster
from tests.e2e.system import CONVEYOR, System
from tests.helpers.http import JSON
from tests.helpers.wait import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

SLOT_ERRORS = ("CROSSSLOT", "same slot", "same key slot")


@pytest.fixture
def system(cluster: LocalCluster, prefix: str, tmp_path: Path) -> Iterator[System]:
    deployment = System(cluster.url, prefix, tmp_path)
    before = cluster.crossslot_errors()
    yield deployment
    deployment.stop_all()
    assert cluster.crossslot_errors() == before
    for process in deployment.processes:
        text = process.log_path.read_text()
        assert not [e for e in SLOT_ERRORS if e in text], f"{process.role} hit a slot error"


@pytest.fixture
def queues(cluster: LocalCluster, prefix: str) -> list[str]:
    """One queue on each master."""
    return [names[0] for names in cluster.queues_on_each_master(prefix).values()]


def _api(system: System, method: str, path: str, **kwargs: Any) -> httpx.Response:
    if method != "GET":
        kwargs.setdefault("headers", JSON)  # required of every POST and DELETE (415 otherwise)
    return httpx.request(method, f"{system.api}{path}", timeout=10, **kwargs)


def test_jobs_on_every_master_complete_retry_cancel_and_are_listed(
    system: System, queues: list[str]
) -> None:
    system.start_api()
    worker = system.start("worker", CONVEYOR_QUEUES=",".join(queues))
    system.start("scheduler")

    echoes = [system.post_job("echo", {"q": q}, queue=q) for q in queues]
    flaky = [
        system.post_job("fail", {"times": 2, "message": "not yet"}, queue=q, max_attempts=3)
        for q in queues
    ]
    later = [system.post_job("echo", "later", queue=q, delay_seconds=0.3) for q in queues]
    batch = _api(
        system, "POST", "/jobs/batch", json={"jobs": [{"type": "echo", "queue": q} for q in queues]}
    )
    assert batch.status_code == 201, batch.text

    for job in echoes + later + batch.json()["jobs"]:
        done = system.wait_status(job["id"], "completed")
        assert done["attempts"] == 1
    for job in flaky:  # retried twice through the delayed zset and the scheduler
        done = system.wait_status(job["id"], "completed")
        assert [h["outcome"] for h in done["history"]] == ["failed", "failed", "completed"]

    # Cancel: a running job through the cancel channel, a waiting one at once.
    running = system.post_job("sleep", {"seconds": 60}, queue=queues[1])
    system.wait_status(running["id"], "running")
    assert _api(system, "DELETE", f"/jobs/{running['id']}").status_code == 202
    canceled = system.wait_status(running["id"], "canceled", timeout=5)
    assert canceled["history"][-1]["outcome"] == "canceled"
    waiting = system.post_job("echo", 1, queue=queues[2], delay_seconds=600)
    response = _api(system, "DELETE", f"/jobs/{waiting['id']}")
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"

    # GET /jobs merges every queue, newest first; filters work across slots.
    listed = _api(system, "GET", "/jobs", params={"limit": 500}).json()["items"]
    ids = [j["id"] for j in listed]
    assert ids == sorted(ids, reverse=True)
    assert {j["queue"] for j in listed} == set(queues)
    assert len(listed) == 4 * len(queues) + 2
    stopped = _api(system, "GET", "/jobs", params={"status": "canceled"}).json()["items"]
    assert {j["id"] for j in stopped} == {running["id"], waiting["id"]}

    stats = {q["name"]: q for q in _api(system, "GET", "/queues").json()["items"]}
    for q in queues:
        assert stats[q]["completed"] == 4
        assert stats[q]["consumers"] >= 1
    assert stats[queues[1]]["canceled"] == 1

    workers = _api(system, "GET", "/workers").json()["items"]
    assert [sorted(w["queues"]) for w in workers] == [sorted(queues)]
    assert worker.popen.poll() is None


def test_a_sigkilled_workers_jobs_are_recovered_on_every_master(
    system: System, queues: list[str]
) -> None:
    system.start_api()
    first = system.start("worker", CONVEYOR_QUEUES=",".join(queues))
    jobs = [system.post_job("test.record", {"ms": 1500}, queue=q) for q in queues]

    def started() -> bool:
        return len([x for x in system.ledger_lines() if x["event"] == "start"]) == len(jobs)

    eventually(started, timeout=15, what="every first attempt started")
    first.kill()
    system.start("worker", CONVEYOR_QUEUES=",".join(queues))
    for job in jobs:
        done = system.wait_status(job["id"], "completed", timeout=20)
        assert done["attempts"] == 2
        assert done["history"][0]["outcome"] == "lost and reclaimed"
    ends = [x["job_id"] for x in system.ledger_lines() if x["event"] == "end"]
    assert sorted(ends) == sorted(j["id"] for j in jobs)


def test_operator_commands_work_through_the_cluster(system: System, queues: list[str]) -> None:
    def conveyor(*args: str) -> Any:
        out = subprocess.run(
            [CONVEYOR, *args], env=system.env(), capture_output=True, timeout=30, check=True
        )
        return json.loads(out.stdout) if "--json" in args else out.stdout.decode()

    created = conveyor("enqueue", "echo", "--payload", "7", "--queue", queues[2], "--json")
    shown = conveyor("get", created["id"], "--json")
    assert shown["queue"] == queues[2]
    assert shown["status"] == "pending"
    listed = conveyor("ls", "--json")
    assert [j["id"] for j in listed["items"]] == [created["id"]]
    assert queues[2] in conveyor("queues")
