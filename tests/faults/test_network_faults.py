"""T5: network faults between the workers (and scheduler) and Redis, through a TCP proxy
(tests/helpers/fault_proxy.py): added latency, connection resets, a blackhole, refused
connections. The API talks to Redis directly, so jobs keep arriving during the fault.

Pass: nothing lost; once the fault heals every job completes within lease + reclaim
interval + slack (no job stays stuck in flight); no process exits; every duplicate is
explained by a reclaim; the processes do not flood their logs while the fault lasts.
"""

from __future__ import annotations

import time

import pytest

from conveyor.store.keys import Keys
from tests.faults.conftest import MakeProxy, MakeRedis, MakeSystem
from tests.faults.harness import redisio
from tests.faults.harness.deploy import exited, noisy_lines
from tests.faults.harness.ledger import tally
from tests.faults.harness.load import post_batch
from tests.faults.harness.profile import Profile
from tests.faults.harness.recorder import Figures, Recorder
from tests.helpers.fault_proxy import FaultProxy, Mode
from tests.helpers.wait import eventually

pytestmark = pytest.mark.faults

LEASE = 2.0
RECLAIM_INTERVAL = LEASE / 2 * 1.25
SLACK = 8.0  # reconnect backoff (capped at 5 s) and a shared machine
NOISE_PER_SECOND = 20.0  # warning lines per second and process, at most, during a fault
RESET_EVERY = 0.5


def _inject(proxy: FaultProxy, fault: str, seconds: float) -> None:
    if fault == "latency":
        proxy.set_mode(Mode.LATENCY, latency=0.2)
    elif fault == "blackhole":
        proxy.set_mode(Mode.BLACKHOLE)
    elif fault == "refuse":
        proxy.set_mode(Mode.REFUSE)
        proxy.reset_all()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(RESET_EVERY)
        if fault == "reset":
            proxy.reset_all()


@pytest.mark.parametrize("fault", ["latency", "reset", "blackhole", "refuse"])
def test_network_fault_between_workers_and_redis(
    make_redis: MakeRedis,
    make_system: MakeSystem,
    make_proxy: MakeProxy,
    profile: Profile,
    recorder: Recorder,
    fault: str,
) -> None:
    server = make_redis(appendonly=True)
    proxy = make_proxy(server.port)
    system = make_system(
        server.url, CONVEYOR_LEASE_SECONDS=str(LEASE), CONVEYOR_REDIS_TIMEOUT_SECONDS="1"
    )
    system.start_api()
    behind = [
        system.start("worker", CONVEYOR_REDIS_URL=proxy.url),
        system.start("worker", CONVEYOR_REDIS_URL=proxy.url),
        system.start("scheduler", CONVEYOR_REDIS_URL=proxy.url),
    ]
    for p in behind:
        p.wait_logged(f"{p.role} started", timeout=45)

    def batch(n: int) -> list[dict[str, object]]:
        jobs: list[dict[str, object]] = []
        for i in range(n):
            job: dict[str, object] = {"type": "test.record", "payload": {"ms": 100}}
            if i % 4 == 0:
                job["delay_seconds"] = 0.5
            jobs.append(job)
        return jobs

    half = profile.net_jobs // 2
    ids = post_batch(system.api, batch(half))
    time.sleep(0.3)  # some are running when the fault starts
    began = time.time()
    ids += post_batch(system.api, batch(profile.net_jobs - half))
    _inject(proxy, fault, profile.net_fault_seconds)
    proxy.heal()
    healed = time.time()

    r = redisio.client(server.url)
    keys = Keys(system.prefix)
    eventually(
        lambda: redisio.all_in(r, keys, "default", ids, {"completed"}),
        timeout=60,
        interval=0.2,
        what="every job completed after the fault healed",
    )
    drained = time.time() - healed
    result = tally(ids, redisio.job_hashes(r, keys, "default", ids), system.ledger_lines())
    noise = max(noisy_lines(p, began, healed) for p in behind) / (healed - began)
    recorder.record(
        Figures(
            scenario=f"T5 network fault: {fault}",
            jobs=len(ids),
            faults=f"{fault} for {profile.net_fault_seconds:g} s between workers/scheduler "
            f"and Redis" + (f" ({proxy.resets} connections reset)" if proxy.resets else ""),
            lost=len(result.lost),
            duplicated=result.duplicated,
            explained=result.explained,
            recovery_s=round(drained, 2),
            details={
                **result.summary(),
                "proxy_connections": proxy.accepted,
                "warnings_per_s_per_process": round(noise, 1),
            },
        )
    )
    assert result.lost == []
    assert result.unexplained == []
    assert exited(behind) == []
    assert drained <= LEASE + RECLAIM_INTERVAL + SLACK
    assert noise <= NOISE_PER_SECOND
    redisio.assert_invariants(server.url, system.prefix)
