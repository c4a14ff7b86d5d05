"""Concurrency and rate limits with real processes (ADR 0017): a concurrency limit of 2
holds across 3 workers while workers are SIGKILLed, and a rate limit spreads starts.

What ran when comes from the handlers' ledger (written by the worker processes, outside
Redis): an attempt runs from its start line to its end line, or to the SIGKILL of its
process when it has none."""

from __future__ import annotations

import signal
import time
from typing import Any

import httpx
import pytest

from conveyor.store.keys import Keys
from tests.e2e.system import Process, System
from tests.faults.harness import redisio
from tests.faults.harness.load import post_batch
from tests.faults.harness.supervisor import Kill, Supervisor
from tests.helpers.wait import eventually

pytestmark = pytest.mark.e2e
Q = "default"


def put_limit(system: System, key: str, **limit: Any) -> None:
    response = httpx.put(
        f"{system.api}/queues/{Q}/limits/{key}", json=limit, headers=system.headers, timeout=10
    )
    assert response.status_code in (200, 201), response.text


def intervals(
    lines: list[dict[str, Any]], killed_at: dict[int, float]
) -> list[tuple[float, float]]:
    """(start, end) of every execution: its end line, else the SIGKILL of its process."""
    ends = {
        (ln["job_id"], ln["attempt"], ln["pid"]): ln["t"] for ln in lines if ln["event"] == "end"
    }
    out = []
    for ln in lines:
        if ln["event"] != "start":
            continue
        end = ends.get((ln["job_id"], ln["attempt"], ln["pid"]))
        if end is None:
            end = killed_at[ln["pid"]]  # a start without an end: its worker was killed
        out.append((ln["t"], end))
    return out


def in_flight(system: System, supervisor: Supervisor) -> Process | None:
    """A live worker whose ledger shows an attempt started and not ended."""
    open_pids: dict[int, int] = {}
    for ln in system.ledger_lines():
        open_pids[ln["pid"]] = open_pids.get(ln["pid"], 0) + (1 if ln["event"] == "start" else -1)
    busy = [p for p in supervisor.live() if open_pids.get(p.popen.pid, 0) > 0]
    return busy[0] if busy else None


def most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in events:  # an end sorts before a start at the same instant
        running += step
        peak = max(peak, running)
    return peak


def test_a_concurrency_limit_holds_across_workers_while_they_are_killed(
    system: System, redis_url: str
) -> None:
    system.start_api()
    system.start("scheduler")
    put_limit(system, "queue", max_running=2)
    supervisor = Supervisor(system, count=3, env={"CONVEYOR_CONCURRENCY": "4"})
    supervisor.start()
    try:
        for worker in supervisor.workers:
            worker.wait_logged("worker started", timeout=45)
        ids = post_batch(system.api, [{"type": "test.record", "payload": {"ms": 250}}] * 24)
        while len(supervisor.kills) < 2:  # SIGKILL a worker in the middle of an attempt, twice
            victim = in_flight(system, supervisor)
            if victim is None:
                time.sleep(0.05)
                continue
            at = time.time()
            victim.signal(signal.SIGKILL)
            victim.popen.wait(10)
            supervisor.kills.append(Kill(victim.popen.pid, at))
            time.sleep(0.5)
        r = redisio.client(redis_url)
        keys = Keys(system.prefix)
        eventually(
            lambda: redisio.all_in(r, keys, Q, ids, {"completed"}),
            timeout=90,
            interval=0.5,
            what="every job completed",
        )
    finally:
        supervisor.stop()
    killed_at = {k.pid: k.at for k in supervisor.kills}
    spans = intervals(system.ledger_lines(), killed_at)
    assert len(spans) >= len(ids)
    assert most_at_once(spans) <= 2
    # No slot or held job is left behind: not by the killed workers' attempts either.
    q = keys.queue(Q)
    assert r.zcard(q.limit_slots("queue")) == 0
    assert r.zcard(q.limit_held("queue")) == 0
    listed = httpx.get(f"{system.api}/queues/{Q}/limits", headers=system.headers, timeout=10)
    assert listed.json()["limits"] == [{"key": "queue", "max_running": 2, "running": 0, "held": 0}]
    # Held jobs were not charged an attempt: only the killed attempts were started again.
    hashes = redisio.job_hashes(r, keys, Q, ids).values()
    lost = sum(int(h.get("lost", b"0")) for h in hashes)
    assert lost >= 1  # a killed attempt's slot came back only when its lease ran out
    assert sum(int(h["attempts"]) for h in hashes) == len(ids) + lost
    redisio.assert_invariants(redis_url, system.prefix, [Q])


def test_a_rate_limit_spreads_starts_over_ten_second_windows(
    system: System, redis_url: str
) -> None:
    system.start_api()
    system.start("scheduler")
    rate = 4.0
    put_limit(system, "type:test.record", max_per_second=rate)
    for _ in range(3):
        system.start("worker", CONVEYOR_CONCURRENCY="8").wait_logged("worker started", timeout=45)
    n = 50
    ids = post_batch(system.api, [{"type": "test.record", "payload": {"ms": 5}}] * n)
    r = redisio.client(redis_url)
    keys = Keys(system.prefix)
    eventually(
        lambda: redisio.all_in(r, keys, Q, ids, {"completed"}),
        timeout=60,
        interval=0.5,
        what="every job completed",
    )
    starts = sorted(ln["t"] for ln in system.ledger_lines() if ln["event"] == "start")
    assert len(starts) == n
    window = 10.0
    for i, first in enumerate(starts):
        inside = sum(1 for t in starts[i:] if t < first + window)
        # rate x window, plus the one a full bucket lets through at once, plus one for the
        # workers' clock reading the ledger times (the limit itself runs on Redis's clock).
        assert inside <= rate * window + 2, f"{inside} starts within {window}s of {first}"
    # ...and the jobs are not held back more than the rate asks: 50 starts at 4/s.
    assert starts[-1] - starts[0] <= (n - 1) / rate + 3.0
