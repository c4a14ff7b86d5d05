"""T7: a poison job, whose handler SIGKILLs the worker running it, every time.

Pass: after CONVEYOR_MAX_DELIVERIES lost attempts the job is `failed` with a reason naming
the limit, within max_deliveries x (lease + reclaim interval + restart) + slack; the normal
jobs running alongside all complete (those that lost attempts beside it get their last
chance alone), each duplicate explained by a reclaim.
"""

from __future__ import annotations

import time

import pytest

from conveyor.store.keys import Keys
from tests.faults.conftest import MakeRedis, MakeSystem
from tests.faults.harness import redisio
from tests.faults.harness.ledger import tally
from tests.faults.harness.load import post_batch
from tests.faults.harness.profile import Profile
from tests.faults.harness.recorder import Figures, Recorder
from tests.faults.harness.supervisor import Supervisor
from tests.helpers.wait import eventually

pytestmark = pytest.mark.faults

MAX_DELIVERIES = 3
LEASE = 2.0
PER_DELIVERY = LEASE + LEASE / 2 * 1.25 + 3.0  # lease, reclaim interval, worker restart
SLACK = 15.0


def test_a_job_that_kills_its_worker_ends_failed_as_poison(
    make_redis: MakeRedis,
    make_system: MakeSystem,
    supervisors: list[Supervisor],
    profile: Profile,
    recorder: Recorder,
) -> None:
    server = make_redis(appendonly=True)
    system = make_system(
        server.url,
        CONVEYOR_MAX_DELIVERIES=str(MAX_DELIVERIES),
        CONVEYOR_LEASE_SECONDS=str(LEASE),
        CONVEYOR_CONCURRENCY="8",
    )
    system.start_api()
    supervisor = Supervisor(system, count=2)
    supervisors.append(supervisor)
    supervisor.start()

    others = [{"type": "test.record", "payload": {"ms": 5}}] * profile.poison_others
    half = len(others) // 2
    ids = post_batch(system.api, others[:half])
    began = time.monotonic()
    [poison] = post_batch(system.api, [{"type": "test.kill_worker"}])
    ids += post_batch(system.api, others[half:])

    r = redisio.client(server.url)
    keys = Keys(system.prefix)
    eventually(
        lambda: redisio.statuses(r, keys, "default", [poison])[poison] == "failed",
        timeout=MAX_DELIVERIES * PER_DELIVERY + SLACK,
        interval=0.2,
        what="the poison job failed",
    )
    took = time.monotonic() - began
    eventually(
        lambda: redisio.all_in(r, keys, "default", ids, {"completed", "failed", "canceled"}),
        timeout=60,
        interval=0.5,
        what="every normal job finished",
    )
    [h] = redisio.job_hashes(r, keys, "default", [poison]).values()
    ledger = system.ledger_lines()
    poison_runs = sum(1 for line in ledger if line["job_id"] == poison)
    hashes = redisio.job_hashes(r, keys, "default", ids)
    result = tally(ids, hashes, ledger, expected=("completed", "failed"))
    # Jobs running on the same worker when the poison job killed it lose their attempts
    # too; on their last chance they run alone (worker.last_chance), so none may reach
    # the bound.
    innocent = [i for i, j in hashes.items() if j.get("status") == b"failed"]
    reason = h["last_error"].decode()
    recorder.record(
        Figures(
            scenario="T7 poison job",
            jobs=len(ids) + 1,
            faults=f"1 job SIGKILLs its worker on every delivery (max_deliveries "
            f"{MAX_DELIVERIES}), {len(ids)} normal jobs alongside",
            lost=len(result.lost),
            duplicated=result.duplicated,
            explained=result.explained,
            recovery_s=round(took, 2),
            details={
                **result.summary(),
                "poison_executions": poison_runs,
                "poison_reason": reason,
                "worker_restarts": supervisor.restarts,
                "normal_jobs_failed_as_poison": len(innocent),
            },
        )
    )
    assert poison_runs == MAX_DELIVERIES
    assert "poison" in reason
    assert f"max_deliveries={MAX_DELIVERIES}" in reason
    assert int(h["lost"]) == MAX_DELIVERIES
    assert took <= MAX_DELIVERIES * PER_DELIVERY + SLACK
    assert result.lost == []
    assert result.unexplained == []
    assert innocent == [], "normal jobs were failed as poison with the poison job"
    redisio.assert_invariants(server.url, system.prefix)
