"""T18: a thundering herd of retries, and workers and schedulers whose clocks are skewed.

Herd. `herd_jobs` jobs wait on the queue before the worker starts; its concurrency is the
size of the herd, so it takes them all in one read and they all fail within a fraction of
a second. Each fails twice, then succeeds. Retry policy: base 1 s, factor 2, cap 30 s, full
jitter (CONVEYOR_RETRY_BASE_SECONDS, _FACTOR, _MAX_SECONDS, _JITTER). No scheduler runs
during the first wave of failures, so the due time of every first retry is read from the
queue's `delayed` sorted set (scores in Redis TIME ms) before any is promoted; a second
wave's due time is the job's `next_run_at` (set with the zset score, by the same script).
A failure time is the `finished_at` of the failed attempt in the job's history: the Redis
TIME the fail script added the delay to.

Pass:
- the fullest 100 ms bucket of the first wave's due times holds at most 3 x the mean
  bucket, the buckets covering the window those retries can fall in (first failure to
  last failure + the first attempt's ceiling, 1 s);
- a control run with jitter `none` fails that same criterion (so the check can fail);
- every due - failure time lies within the backoff bounds of its attempt
  (`shared.backoff.bounds_seconds`), in both runs;
- no retry starts before it is due; second-wave retries (promoted by a running scheduler)
  start within the lateness bound; every job completes after exactly two failures and
  one successful run (ledger); invariants hold.

Skew. Processes run under libfaketime (preloaded as the `faketime` wrapper does) with their
wall clock 300 s ahead or behind: two workers (+300 s and -300 s) beside a correct
scheduler; then a whole host, worker and scheduler, at +300 s; then at -300 s. Jobs fail
once then succeed, and delayed jobs come due over a few seconds. State changes take Redis
TIME inside the scripts and the scheduler only estimates Redis time to pick candidates, so:
every due - failure time lies within its attempt's bounds; no retry and no delayed job
starts before it is due (Redis TIME) or later than the lateness bound (300 s of skew would
be either); nothing is lost or run twice; no process exits. The skew of every process is
measured from its own log timestamps (its wall clock) against the log file's modification
time (the real clock), so a run where the preload did not take effect fails.

The monotonic clock is left alone (FAKETIME_DONT_FAKE_MONOTONIC=1). Skew between hosts is
a wall-clock matter: NTP steps or slews CLOCK_REALTIME, while CLOCK_MONOTONIC counts from
boot, means nothing across hosts, and is what asyncio (uvloop) timers, lease renewals,
attempt timeouts and the scheduler's sleeps run on. libfaketime's default fakes it too:
`time.monotonic()` then returns the faked wall clock (about 1.8e9 s in place of the
uptime). With a constant offset the intervals are unchanged, so the scenarios pass that
way as well, but it models no real fault and puts every timer of the process on a clock
that can be stepped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any, cast

import httpx
import pytest
import redis

from conveyor.backoff import Jitter, RetryPolicy, bounds_seconds, ceiling_seconds
from conveyor.store.keys import Keys
from conveyor.worker.scheduler import MAX_SLEEP
from tests.e2e.system import Process
from tests.faults.conftest import MakeRedis, MakeSystem
from tests.faults.harness import redisio
from tests.faults.harness.deploy import exited
from tests.faults.harness.ledger import Tally, tally
from tests.faults.harness.load import percentile, post_batch
from tests.faults.harness.profile import Profile
from tests.faults.harness.recorder import Figures, Recorder
from tests.helpers.wait import eventually

pytestmark = pytest.mark.faults

QUEUE = "default"
POLICY = RetryPolicy(base_seconds=1.0, factor=2.0, max_seconds=30.0, jitter=Jitter.FULL)
BUCKET_MS = 100
HERD_LIMIT = 3.0  # the fullest bucket may hold this many times the mean bucket
HERD_FAILURES = 2  # failed attempts of each herd job before the one that succeeds
# As in T6: the scheduler's longest sleep + 1 s, plus slack for a shared 2-core machine.
LATENESS_BOUND_MS = int((MAX_SLEEP + 1.0 + 4.0) * 1000)
SKEW_S = 300
SKEW_TOLERANCE_S = 5.0  # a process's measured clock offset vs the one it was given
DELAY_WINDOW_S = 3.0  # skew runs: delayed jobs come due over this long, from 1 s on


# -- helpers -----------------------------------------------------------------------------


def retry_env(policy: RetryPolicy) -> dict[str, str]:
    return {
        "CONVEYOR_RETRY_BASE_SECONDS": f"{policy.base_seconds:g}",
        "CONVEYOR_RETRY_FACTOR": f"{policy.factor:g}",
        "CONVEYOR_RETRY_MAX_SECONDS": f"{policy.max_seconds:g}",
        "CONVEYOR_RETRY_JITTER": policy.jitter.value,
    }


@cache
def _faketime_preload() -> str:
    """The library the `faketime` wrapper preloads, as it names it (`$LIB` is expanded by
    the dynamic loader), asked of the wrapper itself."""
    wrapper = shutil.which("faketime")
    if wrapper is None:
        raise RuntimeError("faketime is not installed (apt-get install faketime)")
    shown = subprocess.run(
        [wrapper, "-f", "+0s", "sh", "-c", 'printf %s "$LD_PRELOAD"'],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    if "faketime" not in shown.stdout:
        raise RuntimeError(f"faketime did not preload its library: {shown.stdout!r}")
    return shown.stdout


def api_clock_offset_s(api: str) -> float:
    """How far the API's clock is from this one, by its `Date` header (whole seconds)."""
    before = time.time()
    response = httpx.get(f"{api}/healthz", timeout=5)
    said = parsedate_to_datetime(response.headers["date"]).timestamp()
    return round(said - (before + time.time()) / 2, 1)


def faketime_env(offset_s: int) -> dict[str, str]:
    """Environment that runs a process with its wall clock `offset_s` seconds off and its
    monotonic clock real ({} for no offset)."""
    if offset_s == 0:
        return {}
    preload = " ".join(p for p in (_faketime_preload(), os.environ.get("LD_PRELOAD")) if p)
    return {
        "LD_PRELOAD": preload,
        "FAKETIME": f"{offset_s:+d}s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def _log_ms(line: Mapping[str, Any]) -> float | None:
    ts = line.get("ts")
    if not isinstance(ts, str):
        return None
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000


def clock_offset_s(process: Process) -> float:
    """How far `process`'s wall clock is off: the timestamp of its last log line (its
    clock, when it wrote the line) against the log file's modification time (the real
    clock, at that write). Read while the file does not change."""

    def measure() -> tuple[float] | None:
        before = os.stat(process.log_path).st_mtime_ns
        stamps = [ms for ms in map(_log_ms, process.log_lines()) if ms is not None]
        after = os.stat(process.log_path).st_mtime_ns
        if before != after or not stamps:
            return None
        return ((stamps[-1] - after / 1e6) / 1000,)

    (offset,) = eventually(measure, timeout=10, what=f"a quiet moment in the {process.role}'s log")
    return offset


@dataclass(frozen=True, slots=True)
class Retry:
    """A failed attempt and the retry that followed it; times are Redis TIME ms."""

    job_id: str
    attempt: int  # the attempt that failed (1-based)
    worker: str  # the worker that ran it
    failed_ms: int  # when the fail script recorded it (history finished_at)
    due_ms: int  # when the next attempt was due (delayed zset score / next_run_at)
    started_ms: int | None  # when the next attempt started (its history started_at)

    @property
    def delay_ms(self) -> int:
        return self.due_ms - self.failed_ms


def retries_of(
    hashes: redisio.JobHashes, due_of: Mapping[tuple[str, int], int]
) -> tuple[list[Retry], list[tuple[str, int]]]:
    """Every failed attempt in the jobs' histories with its retry's due time: from `due_of`
    ((job id, attempt) -> score read from the delayed zset) or, for a job's last failure,
    its `next_run_at`. Also the failures whose due time is unknown."""
    found: list[Retry] = []
    unknown: list[tuple[str, int]] = []
    for job_id, h in hashes.items():
        history: list[dict[str, Any]] = json.loads(h.get("history", b"[]"))
        failures = [item for item in history if item.get("outcome") == "failed"]
        started = {
            int(item["attempt"]): int(item["started_at"])
            for item in history
            if item.get("started_at") is not None
        }
        for i, item in enumerate(failures):
            attempt = int(item["attempt"])
            due = due_of.get((job_id, attempt))
            if due is None and i == len(failures) - 1 and h.get("next_run_at"):
                due = int(h["next_run_at"])
            if due is None:
                unknown.append((job_id, attempt))
                continue
            found.append(
                Retry(
                    job_id,
                    attempt,
                    str(item.get("worker", "")),
                    int(item["finished_at"]),
                    due,
                    started.get(attempt + 1),
                )
            )
    return found, unknown


def out_of_bounds(found: Iterable[Retry], policy: RetryPolicy) -> list[Retry]:
    """Retries whose due - failure time is outside the backoff bounds of their attempt
    (the worker sends the delay as int(seconds * 1000))."""
    bad: list[Retry] = []
    for r in found:
        low, high = bounds_seconds(r.attempt, policy)
        if not int(low * 1000) <= r.delay_ms <= int(high * 1000):
            bad.append(r)
    return bad


@dataclass(frozen=True, slots=True)
class Buckets:
    """Due times in 100 ms buckets over the window the retries of one wave can fall in."""

    buckets: int
    fullest: int
    mean: float

    @property
    def ratio(self) -> float:
        return self.fullest / self.mean if self.mean else 0.0


def bucket(wave: Sequence[Retry], policy: RetryPolicy) -> Buckets:
    """The window runs from the wave's first failure to its last failure plus the largest
    delay of the wave's attempt: a retry of this wave cannot be due outside it."""
    if not wave:
        return Buckets(0, 0, 0.0)
    start = min(r.failed_ms for r in wave)
    ceiling_ms = max(int(ceiling_seconds(r.attempt, policy) * 1000) for r in wave)
    end = max(r.failed_ms for r in wave) + ceiling_ms
    buckets = max(-(-(end - start) // BUCKET_MS), 1)
    counts = Counter(min((r.due_ms - start) // BUCKET_MS, buckets - 1) for r in wave)
    return Buckets(buckets, max(counts.values()), len(wave) / buckets)


def lateness_ms(found: Iterable[Retry]) -> list[int]:
    return [r.started_ms - r.due_ms for r in found if r.started_ms is not None]


def ms_figures(values: list[int], name: str) -> dict[str, float | None]:
    return {
        f"{name}_p50_ms": percentile([float(v) for v in values], 50) if values else None,
        f"{name}_p99_ms": percentile([float(v) for v in values], 99) if values else None,
        f"{name}_max_ms": max(values) if values else None,
        f"{name}_min_ms": min(values) if values else None,
    }


def fail_lines(ledger: Iterable[Mapping[str, Any]]) -> Counter[str]:
    return Counter(str(line["job_id"]) for line in ledger if line.get("event") == "fail")


def reached(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> bool:
    """Whether `check` came true within `timeout`: a scenario that does not get there still
    records its figures (the jobs that did not finish count as lost) before it asserts."""
    try:
        eventually(check, timeout=timeout, interval=interval, what=what)
    except AssertionError:
        return False
    return True


def all_completed(r: redis.Redis, keys: Keys, ids: Sequence[str], timeout: float) -> bool:
    return reached(
        lambda: redisio.all_in(r, keys, QUEUE, ids, {"completed"}), timeout, "all completed", 0.2
    )


# -- thundering herd -------------------------------------------------------------------


@dataclass
class HerdRun:
    policy: RetryPolicy
    ids: list[str]
    result: Tally
    retries: list[Retry]
    unknown_due: list[tuple[str, int]]
    out_of_bounds: list[Retry]
    wave1: Buckets
    wave2: Buckets
    wave1_spread_ms: int  # first to last failure of the first wave
    wrong_failures: list[str]  # jobs without exactly HERD_FAILURES failed runs (ledger)
    crashed: list[str]  # worker or scheduler that exited during the run
    prefix: str

    @property
    def early(self) -> list[Retry]:
        return [r for r in self.retries if r.started_ms is not None and r.started_ms < r.due_ms]

    @property
    def wave2_late(self) -> list[int]:
        return lateness_ms(r for r in self.retries if r.attempt == 2)

    def figures(self) -> dict[str, Any]:
        name = self.policy.jitter.value
        delays = {
            a: [r.delay_ms for r in self.retries if r.attempt == a]
            for a in range(1, HERD_FAILURES + 1)
        }
        return {
            f"{name}_wave1_fullest_bucket": self.wave1.fullest,
            f"{name}_wave1_mean_bucket": round(self.wave1.mean, 2),
            f"{name}_wave1_buckets": self.wave1.buckets,
            f"{name}_wave1_ratio": round(self.wave1.ratio, 2),
            f"{name}_wave1_failure_spread_ms": self.wave1_spread_ms,
            f"{name}_wave2_ratio": round(self.wave2.ratio, 2),
            f"{name}_out_of_bounds": len(self.out_of_bounds),
            f"{name}_unknown_due": len(self.unknown_due),
            f"{name}_early_starts": len(self.early),
            **{
                f"{name}_attempt{a}_delay_range_ms": [min(d), max(d)] if d else None
                for a, d in delays.items()
            },
            **ms_figures(self.wave2_late, f"{name}_wave2_lateness"),
            f"{name}_lost": len(self.result.lost),
            f"{name}_wrong_failure_count": len(self.wrong_failures),
        }


def run_herd(make_system: MakeSystem, url: str, n: int, jitter: Jitter) -> HerdRun:
    policy = replace(POLICY, jitter=jitter)
    system = make_system(url, CONVEYOR_CONCURRENCY=str(n), **retry_env(policy))
    system.start_api()
    job = {
        "type": "test.fail_times",
        "payload": {"times": HERD_FAILURES},
        "max_attempts": HERD_FAILURES + 2,
    }
    ids = post_batch(system.api, [job] * n)
    r = redisio.client(url)
    keys = Keys(system.prefix)
    delayed = keys.queue(QUEUE).delayed
    # Waiting on the queue, taken in one read: they fail together. With no scheduler yet,
    # every retry of this first wave stays in the delayed zset, due time and all.
    worker = system.start("worker")
    reached(lambda: r.zcard(delayed) == n, 30 + n / 50, "every job failed once")
    scores: Any = r.zrange(delayed, 0, -1, withscores=True)
    due_of = {(member.decode(), 1): int(score) for member, score in scores}
    scheduler = system.start("scheduler")
    all_completed(r, keys, ids, timeout=30 + n / 50)

    hashes = redisio.job_hashes(r, keys, QUEUE, ids)
    ledger = system.ledger_lines()
    found, unknown = retries_of(hashes, due_of)
    waves = {a: [x for x in found if x.attempt == a] for a in (1, 2)}
    first = [x.failed_ms for x in waves[1]]
    failures = fail_lines(ledger)
    crashed = exited([worker, scheduler])
    system.stop_all()  # idle now: its processes would only take CPU from the next run
    return HerdRun(
        policy=policy,
        ids=ids,
        result=tally(ids, hashes, ledger),
        retries=found,
        unknown_due=unknown,
        out_of_bounds=out_of_bounds(found, policy),
        wave1=bucket(waves[1], policy),
        wave2=bucket(waves[2], policy),
        wave1_spread_ms=max(first) - min(first) if first else 0,
        wrong_failures=[i for i in ids if failures[i] != HERD_FAILURES],
        crashed=crashed,
        prefix=system.prefix,
    )


def test_retry_herd_is_spread_by_full_jitter(
    make_redis: MakeRedis,
    make_system: MakeSystem,
    profile: Profile,
    recorder: Recorder,
) -> None:
    server = make_redis(appendonly=True)
    n = profile.herd_jobs
    spread = run_herd(make_system, server.url, n, Jitter.FULL)
    control = run_herd(make_system, server.url, n, Jitter.NONE)
    runs = (spread, control)
    recorder.record(
        Figures(
            scenario="T18 thundering herd",
            jobs=2 * n,
            faults=(
                f"{n} jobs failing together, twice each, base 1 s cap 30 s full jitter; "
                f"control run of {n} with no jitter"
            ),
            lost=sum(len(run.result.lost) for run in runs),
            duplicated=sum(run.result.duplicated for run in runs),
            explained=sum(run.result.explained for run in runs),
            details={
                **spread.figures(),
                **control.figures(),
                "bucket_ms": BUCKET_MS,
                "limit_fullest_over_mean": HERD_LIMIT,
                "lateness_bound_ms": LATENESS_BOUND_MS,
            },
        )
    )
    assert spread.wave1.ratio <= HERD_LIMIT
    assert control.wave1.ratio > HERD_LIMIT, "the no-jitter control shows no herd"
    for run in runs:
        assert run.unknown_due == []
        assert len(run.retries) == HERD_FAILURES * n
        assert run.out_of_bounds == []
        assert run.early == []
        assert max(run.wave2_late, default=0) <= LATENESS_BOUND_MS
        assert run.result.lost == []
        assert run.result.unexplained == []
        assert run.wrong_failures == []
        assert run.crashed == []
        redisio.assert_invariants(server.url, run.prefix)


# -- clock skew --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Skew:
    name: str
    workers: tuple[int, ...]  # wall-clock offset of each worker, seconds
    scheduler: int  # wall-clock offset of the one scheduler (0: correct)
    api: int = 0  # wall-clock offset of the API, which turns delay_seconds into due times


SKEWS = [
    Skew("workers +300 s and -300 s", (SKEW_S, -SKEW_S), 0),
    Skew("host +300 s", (SKEW_S,), SKEW_S, SKEW_S),
    Skew("host -300 s", (-SKEW_S,), -SKEW_S, -SKEW_S),
]


@pytest.mark.parametrize("skew", SKEWS, ids=["workers-both-ways", "host-ahead", "host-behind"])
def test_skewed_clocks_neither_advance_nor_delay_jobs(
    make_redis: MakeRedis,
    make_system: MakeSystem,
    profile: Profile,
    recorder: Recorder,
    skew: Skew,
) -> None:
    server = make_redis(appendonly=True)
    n = profile.herd_jobs
    concurrency = max(n // len(skew.workers), 1)
    system = make_system(server.url, CONVEYOR_CONCURRENCY=str(concurrency), **retry_env(POLICY))
    system.start_api(**faketime_env(skew.api))
    workers = [system.start("worker", **faketime_env(offset)) for offset in skew.workers]
    scheduler = system.start("scheduler", **faketime_env(skew.scheduler))
    offset_of: dict[str, int] = {}
    for process, offset in zip(workers, skew.workers, strict=True):
        offset_of[str(process.wait_logged("worker started", timeout=45)["worker"])] = offset
    scheduler.wait_logged("scheduler started", timeout=45)
    asked = {f"worker {o:+d} s": o for o in skew.workers} | {"scheduler": skew.scheduler}
    processes = [*workers, scheduler]
    measured = {name: round(clock_offset_s(p), 3) for name, p in zip(asked, processes, strict=True)}
    api_offset = api_clock_offset_s(system.api)

    retry_job = {"type": "test.fail_times", "payload": {"times": 1}, "max_attempts": 3}
    delayed_jobs = [
        {"type": "test.record", "payload": {"ms": 0}, "delay_seconds": 1.0 + DELAY_WINDOW_S * i / n}
        for i in range(n)
    ]
    retry_ids = post_batch(system.api, [retry_job] * n)
    delayed_ids = post_batch(system.api, delayed_jobs)
    ids = retry_ids + delayed_ids
    r = redisio.client(server.url)
    keys = Keys(system.prefix)
    all_completed(r, keys, ids, timeout=20 + n / 50)

    hashes = redisio.job_hashes(r, keys, QUEUE, ids)
    ledger = system.ledger_lines()
    result = tally(ids, hashes, ledger)
    found, unknown = retries_of({i: hashes[i] for i in retry_ids}, {})
    bad_bounds = out_of_bounds(found, POLICY)
    early = [x for x in found if x.started_ms is not None and x.started_ms < x.due_ms]
    late = lateness_ms(found)
    # A delay is counted from Redis's clock when the job is stored, whatever the API's
    # clock says: run_at - created_at (both Redis TIME) is exactly the delay asked for.
    delay_errors = [
        int(hashes[i]["run_at"])
        - int(hashes[i]["created_at"])
        - round(cast(float, job["delay_seconds"]) * 1000)
        for i, job in zip(delayed_ids, delayed_jobs, strict=True)
        if "run_at" in hashes[i]
    ]
    delayed_late = [
        int(h["started_at"]) - int(h["run_at"])
        for h in (hashes[i] for i in delayed_ids)
        if "started_at" in h and "run_at" in h
    ]
    never_started = (
        sum(1 for x in found if x.started_ms is None) + len(delayed_ids) - len(delayed_late)
    )
    delays = [x.delay_ms for x in found]
    by_worker = Counter(f"{offset_of.get(x.worker, 0):+d} s" for x in found)
    failures = fail_lines(ledger)
    wrong_failures = [i for i in retry_ids if failures[i] != 1]
    recorder.record(
        Figures(
            scenario=f"T18 clock skew: {skew.name}",
            jobs=len(ids),
            faults=(
                f"faketime: workers at {', '.join(f'{o:+d} s' for o in skew.workers)}, "
                f"scheduler at {skew.scheduler:+d} s; {n} retries, {n} delayed jobs"
            ),
            lost=len(result.lost),
            duplicated=result.duplicated,
            explained=result.explained,
            recovery_s=round(max([*late, *delayed_late], default=0) / 1000, 3),
            details={
                **result.summary(),
                "clock_offsets_measured_s": measured,
                "retries_failed_on_worker_at": dict(by_worker),
                "retries_out_of_bounds": len(bad_bounds),
                "retries_unknown_due": len(unknown),
                "retry_delay_range_ms": [min(delays, default=None), max(delays, default=None)],
                "retries_started_early": len(early),
                **ms_figures(late, "retry_lateness"),
                "delayed_started_early": sum(1 for d in delayed_late if d < 0),
                **ms_figures(delayed_late, "delayed_lateness"),
                "never_started": never_started,
                "api_clock_offset_s": api_offset,
                "delay_errors_ms": [
                    min(delay_errors, default=None),
                    max(delay_errors, default=None),
                ],
                "wrong_failure_count": len(wrong_failures),
                "lateness_bound_ms": LATENESS_BOUND_MS,
            },
        )
    )
    for name, offset in asked.items():
        assert abs(measured[name] - offset) <= SKEW_TOLERANCE_S, f"{name}: clock not skewed"
    assert set(by_worker) == {f"{o:+d} s" for o in skew.workers}, "a worker ran no failure"
    assert unknown == []
    assert len(found) == n
    assert bad_bounds == []
    assert early == []
    assert never_started == 0
    assert max(late, default=0) <= LATENESS_BOUND_MS
    assert abs(api_offset - skew.api) <= SKEW_TOLERANCE_S + 1, "API clock not skewed"
    assert len(delay_errors) == n
    assert set(delay_errors) == {0}, "a delay was counted from another clock than Redis's"
    assert min(delayed_late, default=0) >= 0
    assert max(delayed_late, default=0) <= LATENESS_BOUND_MS
    assert result.lost == []
    assert result.unexplained == []
    assert wrong_failures == []
    assert exited(processes) == []
    redisio.assert_invariants(server.url, system.prefix)
