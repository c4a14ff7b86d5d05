"""T4: redis-server SIGSTOPped under load, then SIGCONTed.

Pass: while Redis is stopped, API requests that need it answer 503 within the API's Redis
deadline (redis timeout + 0.5 s), none hangs until the client's own timeout; /readyz says
503 and /healthz 200; after SIGCONT enqueues succeed again soon, every process is still the
same process (none exited or was restarted), and every accepted job completes.
"""

from __future__ import annotations

import time

import httpx
import pytest

from conveyor.store.keys import Keys
from tests.faults.conftest import MakeRedis, MakeSystem
from tests.faults.harness import redisio
from tests.faults.harness.deploy import exited, first_success_after, start_all
from tests.faults.harness.ledger import tally
from tests.faults.harness.load import Poster, percentile
from tests.faults.harness.profile import Profile
from tests.faults.harness.recorder import Figures, Recorder
from tests.helpers.wait import eventually

pytestmark = pytest.mark.faults

REDIS_TIMEOUT = 1.0
API_DEADLINE = REDIS_TIMEOUT + 0.5  # api/deps.py: socket timeout + DEADLINE_SLACK_SECONDS
SLACK = 1.5  # scheduling delays on a shared machine
RESUME_BOUND = 2.0 + 3.0  # the plan's 2 s after SIGCONT, plus slack
LEASE = 15.0  # longer than the pause: no lease expires, so no job should run twice


def job(i: int) -> dict[str, object]:
    body: dict[str, object] = {"type": "test.record", "payload": {"ms": 10}}
    if i % 5 == 0:
        body["delay_seconds"] = 0.3  # some go through the scheduler too
    return body


def test_redis_sigstop_then_sigcont(
    make_redis: MakeRedis,
    make_system: MakeSystem,
    profile: Profile,
    recorder: Recorder,
) -> None:
    server = make_redis(appendonly=True)
    system = make_system(
        server.url,
        CONVEYOR_REDIS_TIMEOUT_SECONDS=str(REDIS_TIMEOUT),
        CONVEYOR_LEASE_SECONDS=str(LEASE),
    )
    processes = start_all(system, workers=2)
    pids = [p.popen.pid for p in processes]
    poster = Poster(system.api, job, clients=4, timeout=10)
    poster.start()
    probes: list[tuple[str, int, float]] = []
    try:
        time.sleep(1.0)
        server.pause()
        stopped = time.time()
        with httpx.Client(base_url=system.api, timeout=10) as http:
            while time.time() - stopped < profile.pause_seconds:
                for path in ("/readyz", "/healthz", "/jobs?limit=1"):
                    began = time.monotonic()
                    status = http.get(path).status_code
                    probes.append((path, status, time.monotonic() - began))
                time.sleep(0.2)
        resumed = time.time()
        server.resume()
        eventually(
            lambda: first_success_after(poster, resumed),
            timeout=20,
            what="an enqueue succeeded after SIGCONT",
        )
        time.sleep(1.0)
    finally:
        server.resume()
        poster.stop()

    during = [
        (took, status)
        for sent, took, status in poster.latencies
        if stopped + 0.1 < sent and sent + took < resumed
    ]
    resume = first_success_after(poster, resumed) or 0.0
    r = redisio.client(server.url)
    keys = Keys(system.prefix)
    ids = list(poster.accepted)
    eventually(
        lambda: redisio.all_in(r, keys, "default", ids, {"completed"}),
        timeout=60,
        interval=0.5,
        what="every accepted job completed",
    )
    result = tally(ids, redisio.job_hashes(r, keys, "default", ids), system.ledger_lines())
    slowest = max([took for took, _ in during] + [took for _, _, took in probes], default=0.0)
    recorder.record(
        Figures(
            scenario="T4 Redis SIGSTOP/SIGCONT",
            jobs=len(ids),
            faults=f"redis-server stopped {profile.pause_seconds:g} s under 4 POST clients",
            lost=len(result.lost),
            duplicated=result.duplicated,
            explained=result.explained,
            recovery_s=round(resume, 2),
            details={
                **result.summary(),
                "requests_during_pause": len(during),
                "answers_during_pause": sorted({s for _, s in during}),
                "slowest_answer_during_pause_s": round(slowest, 2),
                "p99_answer_during_pause_s": round(percentile([t for t, _ in during], 99), 2),
                "unknown_outcomes": poster.unknown,
                "api_deadline_s": API_DEADLINE,
            },
        )
    )
    assert during, "no request was answered while Redis was stopped"
    assert {status for _, status in during} == {503}
    assert poster.unknown == 0  # no request hung until the client gave up
    assert slowest <= API_DEADLINE + SLACK
    assert {status for path, status, _ in probes if path == "/readyz"} == {503}
    assert {status for path, status, _ in probes if path == "/healthz"} == {200}
    assert {status for path, status, _ in probes if path.startswith("/jobs")} == {503}
    assert resume <= RESUME_BOUND
    assert exited(processes) == []
    assert [p.popen.pid for p in processes] == pids
    assert result.lost == []
    assert result.duplicated == 0  # the lease outlives the pause
    redisio.assert_invariants(server.url, system.prefix)
