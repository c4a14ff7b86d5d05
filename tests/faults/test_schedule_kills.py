"""T-periodic: an every-second schedule keeps firing while its schedulers are SIGKILLed and
restarted.

Pass: each fire time has exactly one job (its id the one derived from the schedule and that
time), and no fire time is missed beyond the `catch_up` rule: with three schedulers killed
one at a time, and all at once for less than the grace, every fire time of the window has
its job (they were late, not missed); after an outage longer than the grace, the missed
fire times have one job (`catch_up: one`) or none (`catch_up: none`).
"""

from __future__ import annotations

import random
import time
from typing import Any

import httpx
import pytest
import redis

from conveyor.ids import job_id_time_ms
from conveyor.schedules import fire_job_id
from conveyor.store.keys import Keys
from tests.e2e.system import Process, System
from tests.faults.conftest import MakeRedis, MakeSystem
from tests.faults.harness import redisio
from tests.helpers.wait import eventually

pytestmark = pytest.mark.faults

WINDOW_S = 20.0  # how long the kills go on
GRACE_S = 3  # CONVEYOR_SCHEDULE_GRACE_SECONDS of the catch-up deployments


def put_schedule(system: System, name: str, **fields: Any) -> dict[str, Any]:
    body = {"type": "test.record", "payload": {"ms": 0}, "every_seconds": 1, **fields}
    response = httpx.put(
        f"{system.api}/schedules/{name}", json=body, headers=system.headers, timeout=10
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def fired(r: redis.Redis, keys: Keys, name: str) -> dict[int, int]:
    """Fire time -> creation time (Redis TIME, epoch ms) of every job of schedule `name`;
    checks that each id is the one derived from the schedule's name and its fire time."""
    q = keys.queue("default")
    members: Any = r.zrange(q.all_index, 0, -1)
    ids = [m.decode() for m in members]
    with r.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(q.job(job_id), ["schedule", "created_at"])
        rows: list[Any] = pipe.execute()
    out: dict[int, int] = {}
    for job_id, (owner, created_at) in zip(ids, rows, strict=True):
        if owner == name.encode():
            fire = job_id_time_ms(job_id)
            assert job_id == fire_job_id(name, fire)
            out[fire] = int(created_at)
    return out


def fire_times(r: redis.Redis, keys: Keys, name: str) -> list[int]:
    """The fire time of every job of schedule `name`, oldest first (ids are unique, and
    `fired` checks each is derived from its fire time: a time can have one job only)."""
    return sorted(fired(r, keys, name))


def start_schedulers(system: System, n: int) -> list[Process]:
    started = [system.start("scheduler") for _ in range(n)]
    for p in started:
        p.wait_logged("scheduler started", timeout=45)
    return started


def test_an_every_second_schedule_fires_once_per_second_through_scheduler_kills(
    make_redis: MakeRedis, make_system: MakeSystem
) -> None:
    server = make_redis(appendonly=True)
    # A grace far longer than any outage here (a restart takes seconds on a loaded machine):
    # every fire time is late, none missed, so every one must get its job.
    system = make_system(server.url, CONVEYOR_SCHEDULE_GRACE_SECONDS="120")
    system.start_api()
    schedulers = start_schedulers(system, 3)
    put_schedule(system, "tick")
    r = redisio.client(server.url)
    keys = Keys(system.prefix)
    eventually(lambda: fire_times(r, keys, "tick"), timeout=15, what="a first fire")

    rng = random.Random(17)
    end = time.monotonic() + WINDOW_S
    kills = 0
    outage_done = False
    while time.monotonic() < end:
        if not outage_done and time.monotonic() > end - WINDOW_S / 2:
            # All at once, for less than the grace: the fire times meanwhile are late.
            for p in schedulers:
                p.kill()
            kills += len(schedulers)
            time.sleep(1.0)
            schedulers = [system.start("scheduler") for _ in range(3)]
            outage_done = True
            continue
        victim = rng.randrange(len(schedulers))
        schedulers[victim].kill()
        kills += 1
        time.sleep(rng.uniform(0.0, 0.8))
        schedulers[victim] = system.start("scheduler")
        # The next kill once the new one runs: the others keep firing meanwhile.
        schedulers[victim].wait_logged("scheduler started", timeout=45)
        time.sleep(rng.uniform(0.0, 1.0))
    stopped_at = time.time() * 1000
    for p in schedulers:
        p.wait_logged("scheduler started", timeout=45)

    def caught_up() -> list[int] | None:
        times = fire_times(r, keys, "tick")
        return times if times and times[-1] >= stopped_at else None

    times = eventually(caught_up, timeout=30, interval=0.2, what="fires after the kills")
    assert kills >= 6
    assert all(t % 1000 == 0 for t in times)
    expected = list(range(times[0], times[-1] + 1, 1000))
    missing = sorted(set(expected) - set(times))
    assert missing == [], f"{len(missing)} fire times got no job: {missing[:5]}"
    assert len(times) >= WINDOW_S


@pytest.mark.parametrize("catch_up", ["one", "none"])
def test_fire_times_missed_while_no_scheduler_ran_follow_catch_up(
    make_redis: MakeRedis, make_system: MakeSystem, catch_up: str
) -> None:
    server = make_redis(appendonly=True)
    system = make_system(server.url, CONVEYOR_SCHEDULE_GRACE_SECONDS=str(GRACE_S))
    system.start_api()
    schedulers = start_schedulers(system, 2)
    put_schedule(system, "tick", catch_up=catch_up)
    r = redisio.client(server.url)
    keys = Keys(system.prefix)
    eventually(lambda: len(fire_times(r, keys, "tick")) >= 2, timeout=15, what="two fires")
    for p in schedulers:
        p.kill()
    down_at = time.time() * 1000
    before = fire_times(r, keys, "tick")
    time.sleep(GRACE_S + 5.0)  # the outage: longer than the grace
    up_at = time.time() * 1000
    start_schedulers(system, 2)

    def caught_up() -> list[int] | None:
        times = fire_times(r, keys, "tick")
        return times if times[-1] >= up_at + 2000 else None

    eventually(caught_up, timeout=30, interval=0.2, what="fires after the outage")
    jobs = fired(r, keys, "tick")
    times = sorted(jobs)
    assert times[: len(before)] == before
    resumed = [t for t in times if t > before[-1]]
    # The outage left fire times without a job: more than the grace before the restart.
    assert resumed[0] - before[-1] > 3000, (before[-1], resumed[:3])
    # From the first fire after the outage on, every fire time has its job.
    assert resumed == list(range(resumed[0], resumed[-1] + 1, 1000))
    # The first pass after the restart creates its jobs in one script call (one creation
    # time): the fire times of the last GRACE_S seconds (late: each gets its job), and
    # under `catch_up: one` also the latest missed one, older than the grace.
    first_pass = [t for t in resumed if jobs[t] == jobs[resumed[0]]]
    assert first_pass == resumed[: len(first_pass)]
    lateness = jobs[resumed[0]] - resumed[0]
    if catch_up == "one":
        assert len(first_pass) == GRACE_S + 1, first_pass
        assert lateness > GRACE_S * 1000
    else:
        assert len(first_pass) == GRACE_S, first_pass
        assert lateness <= GRACE_S * 1000 + 500
    assert before[-1] <= down_at
