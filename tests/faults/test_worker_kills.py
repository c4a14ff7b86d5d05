"""T1: workers SIGKILLed one a second under load while a supervisor restarts them.

Pass: nothing lost; every execution beyond the first is explained by a recorded reclaim;
a killed worker's jobs restart within lease + reclaim interval + slack; invariants hold.
"""

from __future__ import annotations

import random
import time

import pytest

from conveyor.store.keys import Keys
from tests.faults.conftest import MakeRedis, MakeSystem
from tests.faults.harness import redisio
from tests.faults.harness.ledger import recovery_after_kills, tally
from tests.faults.harness.load import post_batch
from tests.faults.harness.profile import Profile
from tests.faults.harness.recorder import Figures, Recorder
from tests.faults.harness.supervisor import Supervisor
from tests.helpers.wait import eventually

pytestmark = pytest.mark.faults

LEASE = 2.0
RECLAIM_INTERVAL = LEASE / 2 * 1.25  # the reclaimer's period, jitter included
SLACK = 6.0  # a shared 2-core machine: process start-up and scheduling delays


def test_worker_sigkill_storm(
    make_redis: MakeRedis,
    make_system: MakeSystem,
    supervisors: list[Supervisor],
    profile: Profile,
    recorder: Recorder,
) -> None:
    server = make_redis(appendonly=True)
    system = make_system(server.url, CONVEYOR_CONCURRENCY="8", CONVEYOR_LEASE_SECONDS=str(LEASE))
    system.start_api()
    supervisor = Supervisor(system, count=2)
    supervisors.append(supervisor)
    supervisor.start()
    for worker in supervisor.workers:
        worker.wait_logged("worker started", timeout=45)

    per_round = profile.kill_jobs // profile.kill_count
    ids: list[str] = []
    began = time.monotonic()
    for round_ in range(profile.kill_count):
        size = per_round if round_ < profile.kill_count - 1 else profile.kill_jobs - len(ids)
        jobs = [{"type": "test.record", "payload": {"ms": random.randint(10, 50)}}] * size
        ids += post_batch(system.api, jobs)
        time.sleep(random.uniform(0.02, 0.15))  # while that batch runs
        supervisor.kill_random()
        # One kill a second, measured from the start, whatever the posting took.
        time.sleep(max(began + round_ + 1 - time.monotonic(), 0))

    r = redisio.client(server.url)
    keys = Keys(system.prefix)
    eventually(
        lambda: redisio.all_in(r, keys, "default", ids, {"completed"}),
        timeout=60 + profile.kill_count * 2,
        interval=0.5,
        what="every job completed",
    )
    result = tally(ids, redisio.job_hashes(r, keys, "default", ids), system.ledger_lines())
    gaps = recovery_after_kills(system.ledger_lines(), [(k.pid, k.at) for k in supervisor.kills])
    recorder.record(
        Figures(
            scenario="T1 worker SIGKILL storm",
            jobs=len(ids),
            faults=f"{len(supervisor.kills)} worker SIGKILLs, 1/s, {supervisor.restarts} restarts",
            lost=len(result.lost),
            duplicated=result.duplicated,
            explained=result.explained,
            recovery_s=round(max(gaps), 2) if gaps else None,
            details={**result.summary(), "lease_s": LEASE, "workers": 2, "concurrency": 8},
        )
    )
    assert result.lost == []
    assert result.unexplained == []
    assert len(supervisor.kills) == profile.kill_count
    assert result.reclaims > 0  # kills did cut jobs short
    assert max(gaps, default=0.0) <= LEASE + RECLAIM_INTERVAL + SLACK
    redisio.assert_invariants(server.url, system.prefix)
