"""A Redis Cluster master dies: its replica takes over, and Conveyor follows.

Three masters with one replica each (`cluster-node-timeout` 2 s), the real processes on a
``redis+cluster://`` URL naming every node, one queue on each master. The master of one
queue is SIGKILLed: within the bound, the API creates jobs in that queue again (through
the promoted replica), and jobs of every queue created after the failover all run.
Without WAIT (refused in cluster mode), jobs created in the last moments before the kill
may be lost, so only those created afterwards are checked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.servers import LocalCluster
from tests.e2e.system import System
from tests.helpers.wait import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

FOLLOW_WITHIN_S = 15.0


@pytest.fixture
def replicated(tmp_path: Path) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path / "cluster", replicas=1)
    try:
        local.start()
        yield local
    finally:
        local.stop()


@pytest.fixture
def system(replicated: LocalCluster, prefix: str, tmp_path: Path) -> Iterator[System]:
    deployment = System(replicated.url, prefix, tmp_path, env_overrides={})
    yield deployment
    deployment.stop_all()


def test_conveyor_follows_a_master_failover(
    replicated: LocalCluster, system: System, prefix: str
) -> None:
    queues = [names[0] for names in replicated.queues_on_each_master(prefix).values()]
    system.start_api()
    system.start("worker", CONVEYOR_QUEUES=",".join(queues))
    system.start("scheduler")
    for q in queues:
        system.wait_status(system.post_job("echo", q, queue=q)["id"], "completed")

    victim = replicated.slot_owner(replicated.keyslot(f"{prefix}:{{{queues[0]}}}:stream"))
    killed_at = time.monotonic()
    replicated.node_on(victim).kill()

    def created_again() -> str | None:
        response = httpx.post(
            f"{system.api}/jobs", json={"type": "echo", "queue": queues[0]}, timeout=10
        )
        return response.json()["id"] if response.status_code == 201 else None

    first = eventually(created_again, timeout=FOLLOW_WITHIN_S + 10, interval=0.1, what="201")
    assert time.monotonic() - killed_at <= FOLLOW_WITHIN_S
    assert victim not in replicated.master_ports()

    after = [first, *(system.post_job("echo", q, queue=q)["id"] for q in queues)]
    delayed = system.post_job("echo", "later", queue=queues[0], delay_seconds=0.2)["id"]
    for job_id in [*after, delayed]:
        system.wait_status(job_id, "completed", timeout=30)
    assert replicated.crossslot_errors() == 0
