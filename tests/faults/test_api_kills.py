"""T13: the API process SIGKILLed while clients are creating jobs, and restarted on the
same port. Every client sends an Idempotency-Key per job and repeats the request with the
same key until it gets an answer, as a careful client would.

Pass: every job answered 201 exists and completes; each key ends with exactly one job
(every answer for a key names the same job, and the queue holds one job per key); the
requests whose outcome was unknown to the client (cut off by a kill) are counted.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import httpx
import pytest

from conveyor.store.keys import Keys
from tests.e2e.system import System
from tests.faults.conftest import MakeRedis, MakeSystem
from tests.faults.harness import redisio
from tests.faults.harness.ledger import tally
from tests.faults.harness.profile import Profile
from tests.faults.harness.recorder import Figures, Recorder
from tests.helpers.wait import eventually

pytestmark = pytest.mark.faults


class KeyedClients:
    """Threads creating jobs, each with its own Idempotency-Key, retried until answered."""

    def __init__(self, api: str, clients: int) -> None:
        self.api = api
        self.answers: dict[str, list[str]] = defaultdict(list)  # key -> job ids answered
        self.unknown = 0  # requests cut off: no answer, the job may or may not exist
        self.unavailable = 0  # 503s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(clients)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def _run(self, n: int) -> None:
        k = 0
        with httpx.Client(base_url=self.api, timeout=10) as http:
            while not self._stop.is_set():
                k += 1
                self._create(http, f"c{n}-{k}")

    def _create(self, http: httpx.Client, key: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                response = http.post(
                    "/jobs",
                    json={"type": "test.record", "payload": {"ms": 5}},
                    headers={"Idempotency-Key": key},
                )
            except httpx.HTTPError:
                with self._lock:
                    self.unknown += 1
                time.sleep(0.05)
                continue
            if response.status_code in (200, 201):
                with self._lock:
                    self.answers[key].append(response.json()["id"])
                return
            assert response.status_code == 503, response.text
            with self._lock:
                self.unavailable += 1
            time.sleep(0.05)
        raise AssertionError(f"no answer for {key} within 60 s")


def _restart_api(system: System) -> None:
    system.start("api", "--port", str(system.api_port))
    eventually(system._api_ready, timeout=30, what="API ready again")


def test_api_sigkilled_mid_request_with_idempotent_clients(
    make_redis: MakeRedis,
    make_system: MakeSystem,
    profile: Profile,
    recorder: Recorder,
) -> None:
    server = make_redis(appendonly=True)
    system = make_system(server.url, CONVEYOR_CONCURRENCY="20")
    api = system.start_api()
    system.start("worker")
    clients = KeyedClients(system.api, profile.api_clients)
    clients.start()
    downtime: list[float] = []
    try:
        for _ in range(profile.api_kills):
            time.sleep(1.0)
            api.kill()
            killed = time.monotonic()
            _restart_api(system)
            downtime.append(time.monotonic() - killed)
            api = system.processes[-1]
        time.sleep(1.0)
    finally:
        clients.stop()

    r = redisio.client(server.url)
    keys = Keys(system.prefix)
    ids = sorted({job_id for answered in clients.answers.values() for job_id in answered})
    eventually(
        lambda: redisio.all_in(r, keys, "default", ids, {"completed"}),
        timeout=60,
        interval=0.5,
        what="every answered job completed",
    )
    result = tally(ids, redisio.job_hashes(r, keys, "default", ids), system.ledger_lines())
    split = {k: v for k, v in clients.answers.items() if len(set(v)) != 1}
    in_queue = int(r.zcard(keys.queue("default").all_index))
    recorder.record(
        Figures(
            scenario="T13 API SIGKILLed mid-request",
            jobs=len(ids),
            faults=f"{profile.api_kills} API SIGKILLs + restarts under {profile.api_clients} "
            "clients using Idempotency-Key",
            lost=len(result.lost),
            duplicated=result.duplicated,
            explained=result.explained,
            recovery_s=round(max(downtime), 2),
            details={
                **result.summary(),
                "keys": len(clients.answers),
                "jobs_in_queue": in_queue,
                "unknown_outcomes_retried": clients.unknown,
                "answers_503": clients.unavailable,
                "keys_with_two_jobs": len(split),
            },
        )
    )
    assert split == {}
    assert in_queue == len(clients.answers)  # one job per key, none created twice
    assert result.lost == []
    assert result.duplicated == 0
    redisio.assert_invariants(server.url, system.prefix)
