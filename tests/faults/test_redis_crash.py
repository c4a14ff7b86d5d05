"""T3: redis-server SIGKILLed under enqueue load and restarted on the same AOF files.

Pass: every job whose POST got a 201 still exists after the restart and completes (with
``appendfsync always``; with ``everysec`` the loss seen is reported, along with Redis's
``aof_delayed_fsync`` counter); no process exits; enqueues resume soon after Redis is up.

A process crash does not test fsync: the kernel keeps the written AOF in its page cache.
Only a power loss would; it is not simulated here (see docs/reliability.md).
"""

from __future__ import annotations

import random
import time

import pytest

from conveyor.store.keys import Keys
from tests.faults.conftest import MakeRedis, MakeSystem
from tests.faults.harness import redisio
from tests.faults.harness.deploy import exited, first_success_after, info_field, start_all
from tests.faults.harness.ledger import tally
from tests.faults.harness.load import Poster
from tests.faults.harness.profile import Profile
from tests.faults.harness.recorder import Figures, Recorder
from tests.helpers.wait import eventually

pytestmark = pytest.mark.faults

RESUME_BOUND = 5.0 + 5.0  # the plan's 5 s after Redis is up, plus slack for a shared machine


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_redis_sigkill_under_enqueue_load(
    make_redis: MakeRedis,
    make_system: MakeSystem,
    profile: Profile,
    recorder: Recorder,
    fsync: str,
) -> None:
    server = make_redis(appendonly=True, appendfsync=fsync)
    system = make_system(server.url, CONVEYOR_REDIS_TIMEOUT_SECONDS="1")
    processes = start_all(system, workers=2)
    poster = Poster(system.api, lambda i: {"type": "test.record", "payload": {"ms": 5}}, clients=8)
    poster.start()
    resumes: list[float] = []
    delayed_fsyncs = 0
    try:
        for _ in range(profile.crash_runs):
            time.sleep(random.uniform(0.5, profile.crash_seconds))
            r = redisio.client(server.url)
            delayed_fsyncs += info_field(r, "persistence", "aof_delayed_fsync")
            r.close()
            server.kill()
            time.sleep(0.5)  # requests meet a dead Redis for a while
            server.start()
            up = time.time()
            eventually(
                lambda: first_success_after(poster, up),  # noqa: B023 - used at once
                timeout=30,
                what="an enqueue succeeded after the restart",
            )
            resumes.append(first_success_after(poster, up) or 0.0)
        time.sleep(0.5)
    finally:
        poster.stop()

    r = redisio.client(server.url)
    keys = Keys(system.prefix)
    ids = list(poster.accepted)
    missing = [i for i, s in redisio.statuses(r, keys, "default", ids).items() if s == "missing"]
    eventually(
        lambda: redisio.all_in(r, keys, "default", ids, {"completed", "missing"}),
        timeout=60,
        interval=0.5,
        what="every surviving job completed",
    )
    result = tally(ids, redisio.job_hashes(r, keys, "default", ids), system.ledger_lines())
    recorder.record(
        Figures(
            scenario=f"T3 Redis SIGKILL, appendfsync {fsync}",
            jobs=len(ids),
            faults=f"{profile.crash_runs} redis-server SIGKILL + restart under 8 POST clients",
            lost=len(result.lost),
            duplicated=result.duplicated,
            explained=result.explained,
            recovery_s=round(max(resumes), 2),
            details={
                **result.summary(),
                "missing_201s": len(missing),
                "unknown_outcomes": poster.unknown,
                "refused_5xx": sum(1 for s in poster.refused if s >= 500),
                "aof_delayed_fsync": delayed_fsyncs,
            },
        )
    )
    assert missing == []
    assert result.lost == []
    assert result.unexplained == []
    assert exited(processes) == []
    assert max(resumes) <= RESUME_BOUND
    redisio.assert_invariants(server.url, system.prefix)
