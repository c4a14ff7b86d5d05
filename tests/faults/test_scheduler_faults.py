"""T6: three schedulers promote delayed jobs; two are SIGKILLed while jobs come due.

Pass: every delayed job runs exactly once, none starts before its due time (both times
from Redis's clock, in the job hash), none is lost, and lateness stays bounded.
"""

from __future__ import annotations

import time

import pytest

from conveyor.store.keys import Keys
from tests.faults.conftest import MakeRedis, MakeSystem
from tests.faults.harness import redisio
from tests.faults.harness.deploy import exited
from tests.faults.harness.ledger import tally
from tests.faults.harness.load import percentile, post_batch
from tests.faults.harness.profile import Profile
from tests.faults.harness.recorder import Figures, Recorder
from tests.helpers.wait import eventually

pytestmark = pytest.mark.faults

LATENESS_BOUND = 1.0 + 1.0 + 4.0  # the scheduler's longest sleep + 1 s, plus slack


def test_two_of_three_schedulers_sigkilled_while_jobs_come_due(
    make_redis: MakeRedis,
    make_system: MakeSystem,
    profile: Profile,
    recorder: Recorder,
) -> None:
    server = make_redis(appendonly=True)
    system = make_system(server.url, CONVEYOR_CONCURRENCY="20")
    system.start_api()
    schedulers = [system.start("scheduler") for _ in range(3)]
    workers = [system.start("worker") for _ in range(2)]
    for p in schedulers + workers:
        p.wait_logged(f"{p.role} started", timeout=45)

    window = 3.0 if profile.name == "ci" else 10.0
    n = profile.delayed_jobs
    jobs = [
        {"type": "test.record", "payload": {"ms": 0}, "delay_seconds": 1.0 + window * i / n}
        for i in range(n)
    ]
    posted = time.monotonic()
    ids = post_batch(system.api, jobs)
    kill_at = [posted + 1.0 + window / 3, posted + 1.0 + 2 * window / 3]
    for victim, moment in zip(schedulers[:2], kill_at, strict=True):
        time.sleep(max(moment - time.monotonic(), 0))
        victim.kill()

    r = redisio.client(server.url)
    keys = Keys(system.prefix)
    eventually(
        lambda: redisio.all_in(r, keys, "default", ids, {"completed"}),
        timeout=60 + n / 100,
        interval=0.5,
        what="every delayed job completed",
    )
    hashes = redisio.job_hashes(r, keys, "default", ids)
    result = tally(ids, hashes, system.ledger_lines())
    lateness = [(int(h["started_at"]) - int(h["run_at"])) / 1000 for h in hashes.values()]
    early = [late for late in lateness if late < 0]
    ran_twice = [job_id for job_id in ids if result.starts[job_id] != 1]
    recorder.record(
        Figures(
            scenario="T6 scheduler SIGKILLs (2 of 3)",
            jobs=len(ids),
            faults=f"2 of 3 schedulers SIGKILLed while {n} delayed jobs came due over {window:g} s",
            lost=len(result.lost),
            duplicated=result.duplicated,
            explained=result.explained,
            recovery_s=round(max(lateness), 2),
            details={
                **result.summary(),
                "early_starts": len(early),
                "not_run_exactly_once": len(ran_twice),
                "lateness_p50_s": round(percentile(lateness, 50), 3),
                "lateness_p99_s": round(percentile(lateness, 99), 3),
            },
        )
    )
    assert result.lost == []
    assert ran_twice == []
    assert early == []
    assert percentile(lateness, 99) <= LATENESS_BOUND
    assert exited([schedulers[2], *workers]) == []
    redisio.assert_invariants(server.url, system.prefix)
