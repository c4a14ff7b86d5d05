"""T2: graceful shutdown. A worker running 8 jobs of 2-5 s gets SIGTERM, with
CONVEYOR_SHUTDOWN_TIMEOUT_SECONDS=1; each scenario repeats `profile.shutdown_rounds` times.

`test_sigterm_hands_unfinished_jobs_back` (cooperative handlers). Pass:
- the worker exits 0 within the shutdown timeout + 2 s;
- every job that did not finish within the timeout is `pending` again with its attempt not
  charged: a new stream entry, the old one acknowledged and deleted, nothing left in the
  worker's PEL, `returned at shutdown` (by that worker) last in its history; jobs it had not
  read yet are untouched;
- once another worker runs them, every job completes (lost = 0) and the executions beyond
  each job's first are exactly the jobs returned, each run again by the other worker.

`test_handlers_ignoring_cancel_keep_t1_guarantees` (the Kubernetes grace period). The
handlers ignore the stop: a sync one never looks at ctx.cancelled, an async one swallows
CancelledError. A replacement worker starts at the SIGTERM and the stopping worker is
SIGKILLed 3 s later if still alive. Pass: T1's guarantees: lost = 0, every execution
beyond a job's first explained by an attempt its hash records as lost and reclaimed, a
killed attempt restarts within lease + reclaim interval + slack, invariants hold.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import pytest
import redis

from conveyor.job import Outcome, parse_history
from conveyor.store.keys import GROUP, Keys
from tests.e2e.system import Process, System
from tests.faults.conftest import MakeRedis, MakeSystem
from tests.faults.harness import redisio
from tests.faults.harness.ledger import Tally, recovery_after_kills, tally
from tests.faults.harness.load import post_batch
from tests.faults.harness.profile import Profile
from tests.faults.harness.recorder import Figures, Recorder
from tests.helpers.wait import eventually

pytestmark = pytest.mark.faults

QUEUE = "default"
SHUTDOWN_TIMEOUT = 1.0
EXIT_SLACK = 2.0  # the pass bound: exit within the shutdown timeout + this
IN_FLIGHT = 8
UNREAD = 4  # jobs waiting behind the 8, never read by the stopping worker
LEAD = 1.2  # seconds the jobs run before the SIGTERM: the 2 s ones finish in the grace
KILL_AFTER = 3.0  # the grace period of the variant: SIGKILL this long after SIGTERM
LEASE = 2.0
RECLAIM_INTERVAL = LEASE / 2 * 1.25  # the reclaimer's period, jitter included
SLACK = 6.0  # a shared 2-core machine: process start-up and scheduling delays
ENV = {
    "CONVEYOR_CONCURRENCY": str(IN_FLIGHT),
    "CONVEYOR_SHUTDOWN_TIMEOUT_SECONDS": str(SHUTDOWN_TIMEOUT),
    "CONVEYOR_LEASE_SECONDS": str(LEASE),
}


@dataclass
class Rounds:
    """What the rounds of one scenario observed, summed."""

    ids: list[str] = field(default_factory=list)
    exits: list[tuple[int | None, float | None]] = field(default_factory=list)  # rc, seconds
    returned: int = 0
    finished_in_grace: int = 0
    problems: list[str] = field(default_factory=list)


def start_worker(system: System) -> tuple[Process, str]:
    """A worker and its consumer name, once it reads jobs."""
    process = system.start("worker")
    started = process.wait_logged("worker started", timeout=45)
    return process, str(started["worker"])


def job_runs(system: System, ids: Sequence[str]) -> list[dict[str, Any]]:
    wanted = set(ids)
    return [line for line in system.ledger_lines() if line["job_id"] in wanted]


def wait_running(r: redis.Redis, keys: Keys, ids: Sequence[str], system: System) -> float:
    """Wait until every job in `ids` runs (its start is in the ledger); returns the time
    (time.time()) of the earliest start."""
    eventually(
        lambda: (
            redisio.all_in(r, keys, QUEUE, ids, {"running"})
            and len({line["job_id"] for line in job_runs(system, ids)}) == len(ids)
        ),
        timeout=30,
        interval=0.05,
        what=f"{len(ids)} jobs running",
    )
    return min(float(line["t"]) for line in job_runs(system, ids))


def wait_completed(r: redis.Redis, keys: Keys, ids: Sequence[str], timeout: float) -> None:
    eventually(
        lambda: redisio.all_in(r, keys, QUEUE, ids, {"completed"}),
        timeout=timeout,
        interval=0.2,
        what="every job completed on the other worker",
    )


def stop(process: Process, timeout: float) -> tuple[int | None, float | None]:
    """SIGTERM; the exit code and seconds to exit, or (None, None) if it did not exit
    within `timeout` (it is SIGKILLed then)."""
    began = time.monotonic()
    process.signal(signal.SIGTERM)
    try:
        rc = process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return None, None
    return rc, round(time.monotonic() - began, 2)


def entry_state(r: redis.Redis, stream: str, entry: str) -> tuple[bool, bool]:
    """(on the stream, in the group's PEL) for one entry id."""
    on_stream = bool(r.xrange(stream, entry, entry))
    pending: Any = r.xpending_range(stream, GROUP, entry, entry, 1)
    return on_stream, bool(pending)


def consumer_pending(r: redis.Redis, stream: str, consumer: str) -> int:
    rows: Any = r.xinfo_consumers(stream, GROUP)
    for row in rows:
        name = row["name"].decode() if isinstance(row["name"], bytes) else str(row["name"])
        if name == consumer:
            return int(row["pending"])
    return 0


def returned_problems(
    job_id: str, before: Mapping[str, bytes], after: Mapping[str, bytes], consumer: str
) -> list[str]:
    """What contradicts a hand-back at shutdown, in the job hash alone."""
    problems = []
    if after.get("status") != b"pending":
        problems.append(f"{job_id}: status {after.get('status')!r}, not pending")
    if int(after.get("attempts", b"0")) != int(before.get("attempts", b"0")) - 1:
        problems.append(
            f"{job_id}: attempts {after.get('attempts')!r} after the hand-back, "
            f"{before.get('attempts')!r} while running: the attempt was charged"
        )
    if after.get("entry") == before.get("entry"):
        problems.append(f"{job_id}: no new stream entry")
    history = parse_history(after.get("history"))
    last = history[-1] if history else None
    if last is None or last.outcome != Outcome.RETURNED or last.worker != consumer:
        problems.append(f"{job_id}: history does not end with the hand-back: {last}")
    return problems


@dataclass
class Explained:
    """Executions beyond each job's first, by the cause its hash records."""

    by_reclaim: int = 0  # covered by attempts lost and reclaimed (the `lost` field)
    by_hand_back: int = 0  # the rest, covered by `returned at shutdown` history items
    neither: list[str] = field(default_factory=list)


def explain(result: Tally, hashes: Mapping[str, Mapping[str, bytes]]) -> Explained:
    """Reclaims first (T1's explanation), then hand-backs, job by job."""
    out = Explained()
    for job_id, starts in result.starts.items():
        extra = starts - 1
        if extra <= 0:
            continue
        h = hashes.get(job_id, {})
        reclaims = min(int(h.get("lost") or 0), extra)
        history = parse_history(h.get("history"))
        returned = sum(1 for a in history if a.outcome == Outcome.RETURNED)
        out.by_reclaim += reclaims
        out.by_hand_back += min(extra - reclaims, returned)
        if extra > reclaims + returned:
            out.neither.append(job_id)
    return out


def describe(
    result: Tally, hashes: Mapping[str, Mapping[str, bytes]], ids: Sequence[str]
) -> list[str]:
    """Per job: type, executions (ledger starts) and its history's outcomes."""
    return [
        f"{job_id} {hashes[job_id].get('type', b'?').decode()}: {result.starts[job_id]} starts, "
        f"history {[a.outcome for a in parse_history(hashes[job_id].get('history'))]}"
        for job_id in ids
    ]


@dataclass(frozen=True, slots=True)
class Overlap:
    """Two executions of a job at once, and for how long."""

    job_id: str
    seconds: float


def overlaps(ledger: Sequence[Mapping[str, Any]], gone: Mapping[int, float]) -> list[Overlap]:
    """Executions of one job running at the same time in two processes: an execution lasts
    from its start to its end line, or until its process was gone (`gone`: pid ->
    time.time() of its exit or SIGKILL; still running: now)."""
    runs: dict[str, list[tuple[int, float]]] = {}
    ends: dict[tuple[str, int], float] = {}
    for line in ledger:
        if line["event"] == "start":
            runs.setdefault(str(line["job_id"]), []).append((int(line["pid"]), float(line["t"])))
        elif line["event"] == "end":
            ends[(str(line["job_id"]), int(line["pid"]))] = float(line["t"])
    found = []
    for job_id, starts in runs.items():
        starts.sort(key=lambda run: run[1])
        for (pid, _), (other, later) in pairwise(starts):
            if other == pid:
                continue
            until = ends.get((job_id, pid), gone.get(pid, time.time()))
            if until > later:
                found.append(Overlap(job_id, round(until - later, 2)))
    return found


def sigterm_round(system: System, r: redis.Redis, keys: Keys, seen: Rounds, round_: int) -> None:
    """One round of the cooperative scenario: 8 jobs in flight and 4 unread, SIGTERM, the
    checks of the hand-back, then another worker runs what was handed back."""
    stream = keys.queue(QUEUE).stream
    victim, consumer = start_worker(system)
    durations = [2.0, 2.0] + [random.uniform(3.0, 5.0) for _ in range(IN_FLIGHT - 2)]
    running = post_batch(
        system.api, [{"type": "test.record", "payload": {"ms": int(s * 1000)}} for s in durations]
    )
    first_start = wait_running(r, keys, running, system)
    unread = post_batch(system.api, [{"type": "test.record", "payload": {"ms": 10}}] * UNREAD)
    before = redisio.job_hashes(r, keys, QUEUE, running)
    waiting_before = redisio.job_hashes(r, keys, QUEUE, unread)
    time.sleep(max(first_start + LEAD - time.time(), 0))  # the fault's moment
    seen.exits.append(stop(victim, SHUTDOWN_TIMEOUT + EXIT_SLACK + 10))

    after = redisio.job_hashes(r, keys, QUEUE, running)
    ended = {line["job_id"] for line in job_runs(system, running) if line["event"] == "end"}
    returned = []
    for job_id in running:
        if after[job_id].get("status") == b"completed" and job_id in ended:
            seen.finished_in_grace += 1
            continue
        returned.append(job_id)
        seen.problems += [
            f"round {round_}: {p}"
            for p in returned_problems(job_id, before[job_id], after[job_id], consumer)
        ]
        old_on_stream, old_pending = entry_state(r, stream, before[job_id]["entry"].decode())
        new_on_stream, _ = entry_state(r, stream, after[job_id].get("entry", b"-").decode())
        if old_on_stream or old_pending:
            seen.problems.append(f"round {round_}: {job_id}: old entry not acknowledged")
        if not new_on_stream:
            seen.problems.append(f"round {round_}: {job_id}: new entry not on the stream")
    if (held := consumer_pending(r, stream, consumer)) != 0:
        seen.problems.append(f"round {round_}: the stopped worker's PEL holds {held} entries")
    if redisio.job_hashes(r, keys, QUEUE, unread) != waiting_before:
        seen.problems.append(f"round {round_}: jobs it had not read were changed")
    seen.returned += len(returned)

    rescuer, other = start_worker(system)
    ids = running + unread
    wait_completed(r, keys, ids, timeout=30)
    for job_id, h in redisio.job_hashes(r, keys, QUEUE, returned).items():
        history = parse_history(h.get("history"))
        if not history or history[-1].worker != other:
            seen.problems.append(f"round {round_}: {job_id} was not completed by the other")
    stop(rescuer, 15)
    seen.ids += ids


def test_sigterm_hands_unfinished_jobs_back(
    make_redis: MakeRedis, make_system: MakeSystem, profile: Profile, recorder: Recorder
) -> None:
    server = make_redis(appendonly=True)
    system = make_system(server.url, **ENV)
    system.start_api()
    r = redisio.client(server.url)
    keys = Keys(system.prefix)
    seen = Rounds()
    for round_ in range(profile.shutdown_rounds):
        sigterm_round(system, r, keys, seen, round_)

    ledger = job_runs(system, seen.ids)
    result = tally(seen.ids, redisio.job_hashes(r, keys, QUEUE, seen.ids), ledger)
    re_executions = sum(result.starts.values()) - len(seen.ids)
    why = explain(result, redisio.job_hashes(r, keys, QUEUE, seen.ids))
    exit_times = [s for _, s in seen.exits if s is not None]
    recorder.record(
        Figures(
            scenario="T2 graceful shutdown",
            jobs=len(seen.ids),
            faults=f"{profile.shutdown_rounds} SIGTERMs with {IN_FLIGHT} jobs of 2-5 s in "
            f"flight, shutdown timeout {SHUTDOWN_TIMEOUT:g} s",
            lost=len(result.lost),
            duplicated=result.duplicated,
            explained=why.by_reclaim + why.by_hand_back,
            recovery_s=max(exit_times) if len(exit_times) == len(seen.exits) else None,
            details={
                **result.summary(),
                "unexplained": len(why.neither),
                "explained_by_hand_back": why.by_hand_back,
                "exit_codes": [rc for rc, _ in seen.exits],
                "exit_seconds": [s for _, s in seen.exits],
                "returned": seen.returned,
                "finished_in_grace": seen.finished_in_grace,
                "re_executions": re_executions,
                "problems": seen.problems[:20],
            },
        )
    )
    for rc, seconds in seen.exits:
        assert rc == 0, f"the worker exited with {rc} after SIGTERM"
        assert seconds is not None, "the worker did not exit after SIGTERM"
        assert seconds <= SHUTDOWN_TIMEOUT + EXIT_SLACK
    assert seen.problems == []
    assert seen.returned > 0  # the fault did interrupt jobs
    assert result.lost == []
    assert re_executions == seen.returned
    assert why.neither == []
    assert why.by_hand_back == seen.returned
    redisio.assert_invariants(server.url, system.prefix)


def test_handlers_ignoring_cancel_keep_t1_guarantees(
    make_redis: MakeRedis, make_system: MakeSystem, profile: Profile, recorder: Recorder
) -> None:
    server = make_redis(appendonly=True)
    system = make_system(server.url, **ENV)
    system.start_api()
    r = redisio.client(server.url)
    keys = Keys(system.prefix)
    ids: list[str] = []
    kills: dict[int, float] = {}  # pid -> time.time() of its SIGKILL
    gone: dict[int, float] = {}  # pid -> time.time() it exited or was killed
    exits: list[int | None] = []
    for _ in range(profile.shutdown_rounds):
        victim, _ = start_worker(system)
        jobs = [
            {"type": kind, "payload": {"seconds": round(random.uniform(2.0, 5.0), 2)}}
            for kind in ["test.ignore_cancel", "test.shield"] * (IN_FLIGHT // 2)
        ]
        round_ids = post_batch(system.api, jobs)
        wait_running(r, keys, round_ids, system)
        signalled = time.monotonic()
        victim.signal(signal.SIGTERM)
        replacement, _ = start_worker(system)  # as a rolling deployment starts a new pod
        try:
            exits.append(victim.wait(max(signalled + KILL_AFTER - time.monotonic(), 0.01)))
        except subprocess.TimeoutExpired:
            kills[victim.popen.pid] = time.time()
            victim.kill()
            exits.append(None)
        gone[victim.popen.pid] = time.time()
        wait_completed(r, keys, round_ids, timeout=LEASE + RECLAIM_INTERVAL + SLACK + 10)
        stop(replacement, 15)
        ids += round_ids

    ledger = job_runs(system, ids)
    hashes = redisio.job_hashes(r, keys, QUEUE, ids)
    result = tally(ids, hashes, ledger)
    gaps = recovery_after_kills(ledger, kills.items())
    both = overlaps(ledger, gone)
    why = explain(result, hashes)
    recorder.record(
        Figures(
            scenario="T2 graceful shutdown: handlers ignore cancel, SIGKILL 3 s after SIGTERM",
            jobs=len(ids),
            faults=f"{profile.shutdown_rounds} SIGTERMs with {IN_FLIGHT} jobs ignoring the "
            f"stop in flight, {len(kills)} SIGKILLs {KILL_AFTER:g} s later",
            lost=len(result.lost),
            duplicated=result.duplicated,
            explained=result.explained,
            recovery_s=round(max(gaps), 2) if gaps else None,
            details={
                **result.summary(),
                "explained_by_hand_back": why.by_hand_back,
                "exit_codes_before_sigkill": exits,
                "cancels_ignored": sum(1 for line in ledger if line["event"] == "cancel_ignored"),
                "overlapping_executions": len(both),
                "longest_overlap_s": max((o.seconds for o in both), default=0.0),
                "unexplained_jobs": describe(result, hashes, result.unexplained[:5]),
            },
        )
    )
    assert result.lost == []
    assert result.unexplained == [], "executions beyond the first not explained by a reclaim"
    assert max(gaps, default=0.0) <= LEASE + RECLAIM_INTERVAL + SLACK
    redisio.assert_invariants(server.url, system.prefix)
