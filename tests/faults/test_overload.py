"""T9: overload. Jobs are created far faster than the one slow worker drains them, for a
while; Redis memory per waiting job is measured, and single-job POST latency is probed
throughout and compared with the same probe before the load.

Pass: nothing dropped (every 201 later completes once more workers drain the backlog), the
probe's p99 stays within max(5 x its unloaded p99, 1 s) and no probe fails; the figures
include the Redis memory needed per million waiting jobs.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from conveyor.store.keys import Keys
from tests.faults.conftest import MakeRedis, MakeSystem
from tests.faults.harness import redisio
from tests.faults.harness.ledger import tally
from tests.faults.harness.load import percentile, post_batch
from tests.faults.harness.profile import Profile
from tests.faults.harness.recorder import Figures, Recorder
from tests.helpers.wait import eventually

pytestmark = pytest.mark.faults

JOB = {"type": "test.record", "payload": {"ms": 20, "pad": "x" * 100}}  # ~150 B payload
P99_FACTOR = 5.0
P99_FLOOR = 1.0
OVERLOAD_BATCH = 100  # small requests, so one probe never waits behind a long one


class Probe:
    """One client POSTing a single job every 50 ms, recording each latency."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.latencies: list[float] = []
        self.failures: list[int] = []
        self.ids: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.api, timeout=10) as http:
            while not self._stop.wait(0.05):
                began = time.monotonic()
                response = http.post("/jobs", json=JOB)
                self.latencies.append(time.monotonic() - began)
                if response.status_code == 201:
                    self.ids.append(response.json()["id"])
                else:
                    self.failures.append(response.status_code)

    def run_for(self, seconds: float) -> None:
        self._thread.start()
        time.sleep(seconds)
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)


def test_enqueue_faster_than_workers_drain(
    make_redis: MakeRedis,
    make_system: MakeSystem,
    profile: Profile,
    recorder: Recorder,
) -> None:
    server = make_redis(appendonly=True, extra=["--maxmemory", "512mb"])
    system = make_system(server.url, CONVEYOR_CONCURRENCY="2", CONVEYOR_LOG_LEVEL="WARNING")
    system.start_api()
    r = redisio.client(server.url)
    keys = Keys(system.prefix)

    baseline = Probe(system.api)
    baseline.run_for(2.0)
    memory_before = int(r.info("memory")["used_memory"])
    waiting_before = len(baseline.ids)

    system.start("worker")  # one slow worker: 2 jobs of 20 ms at a time
    probe = Probe(system.api)
    probe.start()
    ids: list[str] = []
    began = time.monotonic()
    try:
        while time.monotonic() - began < profile.overload_seconds:
            ids += post_batch(system.api, [JOB] * OVERLOAD_BATCH)
    finally:
        probe.stop()
    loaded_for = time.monotonic() - began
    waiting = int(r.xlen(keys.queue("default").stream))
    memory_after = int(r.info("memory")["used_memory"])
    sample = ids[len(ids) // 2]
    hash_bytes = int(r.memory_usage(keys.queue("default").job(sample)) or 0)

    for _ in range(3):
        system.start("worker", CONVEYOR_CONCURRENCY="50")
    every = [*baseline.ids, *probe.ids, *ids]
    eventually(
        lambda: redisio.all_in(r, keys, "default", every, {"completed"}),
        timeout=120 + len(every) / 200,
        interval=1.0,
        what="the backlog drained",
    )
    result = tally(every, redisio.job_hashes(r, keys, "default", every), system.ledger_lines())
    per_job = (memory_after - memory_before) / max(waiting - waiting_before, 1)
    unloaded_p99 = percentile(baseline.latencies, 99)
    loaded_p99 = percentile(probe.latencies, 99)
    bound = max(P99_FACTOR * unloaded_p99, P99_FLOOR)
    recorder.record(
        Figures(
            scenario="T9 overload",
            jobs=len(every),
            faults=f"batches of {OVERLOAD_BATCH} POSTed back to back for {loaded_for:.0f} s "
            "against 1 worker (concurrency 2, 20 ms jobs)",
            lost=len(result.lost),
            duplicated=result.duplicated,
            explained=result.explained,
            details={
                **result.summary(),
                "enqueue_rate_per_s": round(len(ids) / loaded_for),
                "waiting_at_peak": waiting,
                "bytes_per_waiting_job": round(per_job),
                "job_hash_memory_usage_bytes": hash_bytes,
                "gb_per_million_waiting": round(per_job * 1e6 / 1e9, 2),
                "probe_p50_unloaded_ms": round(percentile(baseline.latencies, 50) * 1000, 1),
                "probe_p99_unloaded_ms": round(unloaded_p99 * 1000, 1),
                "probe_p50_loaded_ms": round(percentile(probe.latencies, 50) * 1000, 1),
                "probe_p99_loaded_ms": round(loaded_p99 * 1000, 1),
                "probe_failures": len(probe.failures),
            },
        )
    )
    assert waiting > len(ids) // 2  # it really was overloaded
    assert result.lost == []
    assert result.duplicated == 0
    assert probe.failures == []
    assert baseline.failures == []
    assert loaded_p99 <= bound
    redisio.assert_invariants(server.url, system.prefix)
