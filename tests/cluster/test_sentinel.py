"""Sentinel failover under load: SIGKILL the primary while the API is creating jobs.

A primary with two replicas and three sentinels (down-after 1 s). The API, a worker and
the scheduler use a ``redis+sentinel://`` URL and wait for one replica after every enqueue
(``CONVEYOR_REDIS_WAIT_REPLICAS=1``). A client posts jobs one after another; the primary is
killed mid-stream. Then: the API answers 201 again (through the promoted replica) within
10 s, and every job answered 201, before or after the kill, is found and runs.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.cluster.servers import LocalSentinel
from tests.e2e.system import CONVEYOR, System
from tests.helpers.wait import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

FOLLOW_WITHIN_S = 10.0


@dataclass
class Load:
    """Posts jobs one after another from a thread until stopped; records every answer."""

    system: System
    # (request sent, answer received, job id): a request sent before the kill may still
    # be answered 201 by the old primary after it.
    created: list[tuple[float, float, str]] = field(default_factory=list)
    refused: list[tuple[float, int]] = field(default_factory=list)  # (when, status or 0)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def created_after(self, moment: float) -> list[float]:
        """When the 201s to requests sent after `moment` arrived."""
        return [answered for sent, answered, _ in self.created if sent > moment]

    def _run(self) -> None:
        with httpx.Client(base_url=self.system.api, timeout=5) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post("/jobs", json={"type": "test.record"})
                except httpx.HTTPError:
                    self.refused.append((time.monotonic(), 0))
                    continue
                if response.status_code == 201:
                    self.created.append((sent, time.monotonic(), response.json()["id"]))
                else:
                    self.refused.append((time.monotonic(), response.status_code))
                    time.sleep(0.05)  # a 503 says Retry-After; a short pause is enough here


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[LocalSentinel]:
    local = LocalSentinel(tmp_path / "sentinel")
    try:
        local.start()
        yield local
    finally:
        local.stop()


@pytest.fixture
def system(sentinel_set: LocalSentinel, prefix: str, tmp_path: Path) -> Iterator[System]:
    deployment = System(
        sentinel_set.url,
        prefix,
        tmp_path,
        env_overrides={
            "CONVEYOR_REDIS_WAIT_REPLICAS": "1",
            "CONVEYOR_REDIS_WAIT_TIMEOUT_SECONDS": "0.5",
            "CONVEYOR_REDIS_TIMEOUT_SECONDS": "1",
        },
    )
    yield deployment
    deployment.stop_all()


def test_clients_follow_a_failover_and_no_created_job_is_lost(
    sentinel_set: LocalSentinel, system: System
) -> None:
    system.start_api()
    system.start("worker")
    system.start("scheduler")
    load = Load(system)
    load.start()
    try:
        eventually(lambda: len(load.created) >= 50, timeout=20, what="50 jobs created")
        old = sentinel_set.primary_port()
        killed_at = time.monotonic()
        sentinel_set.server_on(old).kill()
        eventually(
            lambda: len(load.created_after(killed_at)) >= 20,
            timeout=FOLLOW_WITHIN_S + 10,
            what="jobs created through the new primary",
        )
    finally:
        load.stop()

    followed_in = load.created_after(killed_at)[0] - killed_at
    assert followed_in <= FOLLOW_WITHIN_S, f"the first 201 after the kill took {followed_in:.1f}s"
    assert sentinel_set.primary_port() != old

    # Every job answered 201 exists on the new primary and runs.
    created = {job_id for _, _, job_id in load.created}

    def all_ran() -> bool:
        ended = {x["job_id"] for x in system.ledger_lines() if x["event"] == "end"}
        return created <= ended

    eventually(all_ran, timeout=30, what="every created job ran")
    for job_id in list(created)[:: max(1, len(created) // 20)]:
        assert system.get_job(job_id)["status"] == "completed"

    # The operator commands find the new primary through the sentinels too.
    job_id = load.created[-1][2]
    shown = subprocess.run(
        [CONVEYOR, "get", job_id, "--json"], env=system.env(), capture_output=True, timeout=30
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "completed"
