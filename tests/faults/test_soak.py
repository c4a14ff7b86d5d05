"""T19: soak. `profile.soak_seconds` of mixed load while workers are SIGKILLed in turn, then
drain and retention; the deployment must end as small as it began.

Deployment: API, scheduler, two supervised workers (one of them SIGKILLed every
`KILL_EVERY` s and restarted, as in T1) and one observed worker that is never killed: its
RSS is read from /proc, and it alone serves the `probe` queue, where a `test.probe` job
reports the asyncio tasks of its event loop (the worker exposes no task count itself:
neither a metric nor a log line). Finished jobs are kept `RESULT_TTL` s only.

Load, every `TICK` s: jobs of 10-200 ms (some delayed 0.5-3 s), short sync jobs, jobs that
fail once or twice and then succeed (3 attempts), jobs that always fail (2 attempts, end
`failed`), and 1-2 s jobs canceled at a random moment (while delayed, waiting or running).
A warm-up of the same load comes first; the RSS and task baselines are read after it
drained.

Pass:
- no job lost (each reached the end its kind and its DELETE answer imply), every
  execution beyond a job's first explained by a reclaim, a killed worker's jobs restarted
  within lease + reclaim interval + slack, invariants hold;
- after drain and retention: XLEN = 0 and PEL = 0 on both queues; the keys are the
  baseline's (before any job) plus one `throughput` hash per queue (the dashboard's ring of
  one-minute counts, at most 180 fields): job hashes expired, the scheduler's expiry pass
  emptied the indexes, dead workers' heartbeat hashes expired;
- every consumer of the group that is not a live worker's holds no entry, and once the
  consumer GC had its chance (idle `GC_IDLE` s, checked every `GC_PERIOD` s) none is left:
  consumers <= live workers. The CI soak ends before any dead consumer is `GC_IDLE` s idle,
  so there only those idle longer than `GC_IDLE + GC_PERIOD` (+ slack) must be gone;
  the full profile waits for the GC;
- the observed worker's RSS grows < 10 % from the baseline to the end, and its asyncio
  task count at the end is the baseline's.
"""

from __future__ import annotations

import heapq
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from conveyor.job import parse_history
from conveyor.states import TERMINAL
from conveyor.store.keys import GROUP, Keys
from conveyor.worker.scheduler import EXPIRE_EVERY
from tests.e2e.system import Process, System
from tests.faults.conftest import MakeRedis, MakeSystem
from tests.faults.harness import redisio
from tests.faults.harness.ledger import Tally, recovery_after_kills, tally
from tests.faults.harness.profile import Profile
from tests.faults.harness.recorder import Figures, Recorder
from tests.faults.harness.supervisor import Supervisor
from tests.helpers.http import JSON
from tests.helpers.wait import eventually

pytestmark = pytest.mark.faults

QUEUE = "default"
PROBE = "probe"
LEASE = 2.0
RECLAIM_INTERVAL = LEASE / 2 * 1.25  # the reclaimer's period, jitter included
SLACK = 6.0  # a shared 2-core machine: process start-up and scheduling delays
RESULT_TTL = 6  # seconds; the collector reads every finished job well before it expires
COLLECT_EVERY = 0.5
KILL_EVERY = 3.0
TICK = 0.5
# worker/lease.py, Reclaimer: consumers idle max(3 leases, 60 s) holding nothing are
# deleted, checked every 20 reclaim rounds of lease/2 s (jitter +-25 %).
GC_IDLE = max(3 * LEASE, 60.0)
GC_PERIOD = 20 * RECLAIM_INTERVAL
RSS_GROWTH = 0.10
MAX_DELIVERIES = 20
DRAIN_SECONDS = 30 + LEASE + SLACK  # the longest job (a retried or delayed one) + a reclaim
FINAL = {s.value for s in TERMINAL}


@dataclass
class Load:
    """Creates the mixed jobs from a thread, and cancels some of them from another; knows
    which final statuses each job may reach."""

    api: str
    expected: dict[str, frozenset[str]] = field(default_factory=dict)
    kinds: Counter[str] = field(default_factory=Counter)
    kind_of: dict[str, str] = field(default_factory=dict)
    cancel_answers: Counter[int] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cancels: list[tuple[float, str]] = field(default_factory=list)

    def run(self, seconds: float) -> None:
        """Create jobs every TICK for `seconds` (blocking), cancels sent meanwhile."""
        until = time.monotonic() + seconds
        done = threading.Event()
        canceller = threading.Thread(target=self._cancel_loop, args=(done,), daemon=True)
        canceller.start()
        with httpx.Client(base_url=self.api, timeout=10) as http:
            while time.monotonic() < until:
                tick = time.monotonic()
                self._create(http)
                time.sleep(max(tick + TICK - time.monotonic(), 0))
        done.set()
        canceller.join(15)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self.expected)

    def _create(self, http: httpx.Client) -> None:
        plan = [(kind, make()) for kind, (count, make) in MIX.items() for _ in range(count)]
        try:
            response = http.post("/jobs/batch", json={"jobs": [job for _, job in plan]})
        except httpx.HTTPError as exc:
            self.refused.append(f"no answer: {exc!r}")
            return
        if response.status_code != 201:
            self.refused.append(f"{response.status_code} {response.text[:200]}")
            return
        now = time.monotonic()
        with self._lock:
            for (kind, _), job in zip(plan, response.json()["jobs"], strict=True):
                self.kinds[kind] += 1
                self.kind_of[job["id"]] = kind
                self.expected[job["id"]] = EXPECTED[kind]
                if kind == "canceled":
                    heapq.heappush(self._cancels, (now + random.uniform(0, 2), job["id"]))

    def _cancel_loop(self, done: threading.Event) -> None:
        with httpx.Client(base_url=self.api, timeout=10) as http:
            while True:
                job_id, planned = self._next_cancel()
                if job_id is not None:
                    self._cancel(http, job_id)
                elif done.is_set() and not planned:
                    return
                else:
                    time.sleep(0.02)

    def _next_cancel(self) -> tuple[str | None, int]:
        """The id of a job whose cancel is due (None: none yet), and how many are planned."""
        with self._lock:
            if self._cancels and self._cancels[0][0] <= time.monotonic():
                return heapq.heappop(self._cancels)[1], len(self._cancels)
            return None, len(self._cancels)

    def _cancel(self, http: httpx.Client, job_id: str) -> None:
        try:
            status = http.delete(f"/jobs/{job_id}", headers=JSON).status_code
        except httpx.HTTPError:
            return  # outcome unknown: either end stays possible
        with self._lock:
            self.cancel_answers[status] += 1
            if status in CANCEL_ANSWERS:
                self.expected[job_id] = CANCEL_ANSWERS[status]


def _record(ms: int, delay: float = 0) -> dict[str, Any]:
    job: dict[str, Any] = {"type": "test.record", "payload": {"ms": ms}}
    if delay:
        job["delay_seconds"] = round(delay, 2)
    return job


def _sync(seconds: float) -> dict[str, Any]:
    return {"type": "test.ignore_cancel", "payload": {"seconds": round(seconds, 3)}}


def _fail_times(times: int, attempts: int) -> dict[str, Any]:
    return {"type": "test.fail_times", "payload": {"times": times}, "max_attempts": attempts}


# kind -> (jobs per tick, a job of that kind)
MIX: dict[str, tuple[int, Callable[[], dict[str, Any]]]] = {
    "record": (6, lambda: _record(random.randint(10, 200))),
    "delayed": (2, lambda: _record(random.randint(10, 200), random.uniform(0.5, 3))),
    "sync": (2, lambda: _sync(random.uniform(0.02, 0.1))),
    "retried": (2, lambda: _fail_times(random.choice((1, 2)), attempts=3)),
    "failing": (1, lambda: _fail_times(5, attempts=2)),
    "canceled": (1, lambda: _record(random.randint(1000, 2000), random.choice((0, 0, 1)))),
}
EXPECTED = {
    "record": frozenset({"completed"}),
    "delayed": frozenset({"completed"}),
    "sync": frozenset({"completed"}),
    "retried": frozenset({"completed"}),
    "failing": frozenset({"failed"}),
    "canceled": frozenset({"completed", "canceled"}),  # until DELETE answers
}
# 200: canceled at once; 202: asked to stop while running, may still end completed;
# 409: it had already finished.
CANCEL_ANSWERS = {
    200: frozenset({"canceled"}),
    202: frozenset({"canceled", "completed"}),
    409: frozenset({"completed"}),
}


class Collector:
    """Reads the hash of every job still open every COLLECT_EVERY s and keeps the first one
    seen in a final status, so each outcome is known before retention deletes it."""

    def __init__(self, r: redis.Redis, keys: Keys, load: Load) -> None:
        self.r = r
        self.keys = keys
        self.load = load
        self.final: dict[str, dict[str, bytes]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def open(self) -> list[str]:
        return [i for i in self.load.ids() if i not in self.final]

    def _run(self) -> None:
        while not self._stop.wait(COLLECT_EVERY):
            self.collect()

    def collect(self) -> None:
        for job_id, h in redisio.job_hashes(self.r, self.keys, QUEUE, self.open()).items():
            if not h or h.get("status", b"").decode() in FINAL:
                self.final[job_id] = h  # {}: gone before it was seen finished: lost


def run_with_kills(load: Load, supervisor: Supervisor, seconds: float) -> None:
    """The mixed load for `seconds`, a worker SIGKILLed every KILL_EVERY s meanwhile."""
    thread = threading.Thread(target=load.run, args=(seconds,), daemon=True)
    began = time.monotonic()
    thread.start()
    n = 1
    while thread.is_alive():
        thread.join(max(began + n * KILL_EVERY - time.monotonic(), 0))
        if thread.is_alive():
            supervisor.kill_random()
            n += 1


def drain(collector: Collector, seconds: float) -> None:
    eventually(lambda: not collector.open(), timeout=seconds, interval=0.5, what="drained")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def probe_tasks(system: System, pid: int) -> int:
    """The observed worker's asyncio task count, the probe job's own task included."""
    job = system.post_job("test.probe", queue=PROBE)
    done = system.wait_status(job["id"], "completed", timeout=20)
    assert done["result"]["pid"] == pid, "the probe ran on another worker"
    return int(done["result"]["tasks"])


def key_shapes(r: redis.Redis, prefix: str) -> Counter[str]:
    """The deployment's keys, with job and worker ids replaced by placeholders."""
    shapes: Counter[str] = Counter()
    for raw in r.scan_iter(match=f"{prefix}:*", count=1000):
        name = raw.decode().removeprefix(prefix)
        name = re.sub(r":job:[0-9A-Z]{26}$", ":job:<id>", name)
        shapes[re.sub(r"^:worker:.+$", ":worker:<id>", name)] += 1
    return shapes


def live_workers(r: redis.Redis, keys: Keys) -> set[str]:
    members: Any = r.zrange(keys.workers, 0, -1)
    ids = [i.decode() for i in members]
    return {i for i in ids if r.exists(keys.worker(i))}


def dead_consumers(r: redis.Redis, keys: Keys) -> list[Consumer]:
    """Consumers of the main queue's group whose worker is gone."""
    live = live_workers(r, keys)
    return [c for c in consumers(r, keys.queue(QUEUE).stream) if c.name not in live]


@dataclass(frozen=True, slots=True)
class Consumer:
    name: str
    pending: int
    idle_s: float


def consumers(r: redis.Redis, stream: str) -> list[Consumer]:
    rows: Any = r.xinfo_consumers(stream, GROUP)
    return [
        Consumer(row["name"].decode(), int(row["pending"]), int(row["idle"]) / 1000) for row in rows
    ]


def stream_sizes(r: redis.Redis, keys: Keys, queues: Iterable[str]) -> dict[str, int]:
    """XLEN and PEL size of each queue's stream."""
    sizes: dict[str, int] = {}
    for queue in queues:
        stream = keys.queue(queue).stream
        sizes[f"{queue} xlen"] = int(r.xlen(stream))
        sizes[f"{queue} pel"] = int(r.xpending(stream, GROUP)["pending"])
    return sizes


def tally_all(
    expected: Mapping[str, frozenset[str]],
    hashes: Mapping[str, Mapping[str, bytes]],
    ledger: Sequence[Mapping[str, Any]],
) -> Tally:
    """`tally` per expected end, summed."""
    groups: dict[frozenset[str], list[str]] = {}
    for job_id, ends in expected.items():
        groups.setdefault(ends, []).append(job_id)
    total = Tally(jobs=0, final=Counter())
    for ends, ids in groups.items():
        part = tally(ids, hashes, ledger, expected=ends)
        total.jobs += part.jobs
        total.final += part.final
        total.lost += part.lost
        total.duplicated += part.duplicated
        total.explained += part.explained
        total.unexplained += part.unexplained
        total.reclaims += part.reclaims
        total.starts = part.starts  # the whole ledger's, the same in every part
    total.unaccepted = len(set(total.starts) - set(expected))
    return total


Run = tuple[int, float, float | None]  # pid, start, that pid's SIGKILL (s from the first start)


def slowest_restarts(
    ledger: Sequence[Mapping[str, Any]], kills: Sequence[tuple[int, float]], n: int = 3
) -> list[tuple[float, str, list[Run]]]:
    """The `n` longest kill -> restart times (ledger.recovery_after_kills), each with its
    job and that job's executions."""
    by_job: dict[str, list[Mapping[str, Any]]] = {}
    for line in ledger:
        if line.get("event") == "start":
            by_job.setdefault(str(line["job_id"]), []).append(line)
    killed = dict(kills)
    slowest = []
    for job_id, lines in by_job.items():
        if len(lines) > 1 and (gaps := recovery_after_kills(lines, kills)):
            t0 = min(float(line["t"]) for line in lines)
            runs: list[Run] = []
            for line in lines:
                pid, kill = int(line["pid"]), killed.get(int(line["pid"]))
                since = None if kill is None else round(kill - t0, 2)
                runs.append((pid, round(float(line["t"]) - t0, 2), since))
            slowest.append((round(max(gaps), 2), job_id, runs))
    return sorted(slowest, reverse=True)[:n]


def describe(load: Load, hashes: Mapping[str, Mapping[str, bytes]], job_id: str) -> str:
    """A job in one line: kind, status, lost attempts, history, last error."""
    h = hashes.get(job_id, {})
    history = [(a.outcome, a.worker) for a in parse_history(h.get("history"))]
    return (
        f"{job_id} {load.kind_of.get(job_id)} {h.get('status', b'missing').decode()} "
        f"lost={int(h.get('lost') or 0)} history={history} "
        f"error={h.get('last_error', b'').decode()!r}"
    )


def start_deployment(system: System) -> tuple[Process, Supervisor]:
    system.start_api()
    system.start("scheduler")
    observed = system.start("worker", CONVEYOR_QUEUES=f"{QUEUE},{PROBE}")
    supervisor = Supervisor(system, count=2)
    supervisor.start()
    for worker in [observed, *supervisor.workers]:
        worker.wait_logged("worker started", timeout=45)
    return observed, supervisor


class RssSampler:
    """A process's RSS when started, every `every` s from a thread, and when stopped."""

    def __init__(self, pid: int, every: float = 5.0) -> None:
        self.pid = pid
        self.every = every
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.samples.append(rss_kb(self.pid))
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.samples.append(rss_kb(self.pid))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(rss_kb(self.pid))


def reached(check: Callable[[], bool], timeout: float, what: str) -> bool:
    """Poll `check` until it holds or `timeout` passes; whether it held."""
    try:
        eventually(check, timeout=timeout, interval=1.0, what=what)
    except AssertionError:
        return False
    return True


def test_soak(
    make_redis: MakeRedis,
    make_system: MakeSystem,
    supervisors: list[Supervisor],
    profile: Profile,
    recorder: Recorder,
) -> None:
    server = make_redis(appendonly=True)
    system = make_system(
        server.url,
        CONVEYOR_CONCURRENCY="8",
        CONVEYOR_LEASE_SECONDS=str(LEASE),
        CONVEYOR_RESULT_TTL_SECONDS=str(RESULT_TTL),
        # Hundreds of kills: keep a job that happens to be on several killed workers from
        # failing as poison (T7's subject), so every kind keeps a single expected end.
        CONVEYOR_MAX_DELIVERIES=str(MAX_DELIVERIES),
    )
    observed, supervisor = start_deployment(system)
    supervisors.append(supervisor)
    pid = observed.popen.pid
    r = redisio.client(server.url)
    keys = Keys(system.prefix)
    eventually(lambda: len(live_workers(r, keys)) == 3, timeout=10, what="3 workers registered")
    baseline_keys = key_shapes(r, system.prefix)
    baseline_dbsize = int(r.dbsize())

    load = Load(system.api)
    collector = Collector(r, keys, load)
    collector.start()
    warmup = min(max(profile.soak_seconds / 20, 5.0), 30.0)
    run_with_kills(load, supervisor, warmup)
    drain(collector, DRAIN_SECONDS)
    tasks_before = probe_tasks(system, pid)
    rss = RssSampler(pid)
    rss.start()

    run_with_kills(load, supervisor, profile.soak_seconds)
    last_kill = time.time()
    drain_began = time.monotonic()
    drain(collector, DRAIN_SECONDS)
    drain_s = time.monotonic() - drain_began
    tasks_after = probe_tasks(system, pid)
    rss.stop()
    collector.stop()

    # Retention: every job hash expires RESULT_TTL s after its end, and the scheduler's
    # expiry pass (every EXPIRE_EVERY s) then empties the indexes.
    # A queue left with no job leaves the registry (the set goes when the last one does) and
    # keeps a tombstone for an hour (store/registry.py): those keys may or may not be there.
    wanted = baseline_keys + Counter({f":{{{q}}}:throughput": 1 for q in (QUEUE, PROBE)})
    optional = {":queues", f":gen{{{system.prefix}:queues}}"} | {
        f":{{{q}}}:retired" for q in (QUEUE, PROBE)
    }

    def settled(shapes: Counter[str]) -> Counter[str]:
        return Counter({k: v for k, v in shapes.items() if k not in optional})

    retained = reached(
        lambda: settled(key_shapes(r, system.prefix)) == settled(wanted),
        RESULT_TTL + EXPIRE_EVERY + SLACK,
        "only the baseline keys and the throughput hashes left",
    )
    wait_for_gc = profile.soak_seconds > GC_IDLE  # long enough for the GC to matter
    if wait_for_gc:
        reached(
            lambda: dead_consumers(r, keys) == [],
            max(last_kill + GC_IDLE + 2 * GC_PERIOD + SLACK - time.time(), 1.0),
            "dead consumers deleted",
        )
    end_keys = key_shapes(r, system.prefix)
    dbsize = int(r.dbsize())
    sizes = stream_sizes(r, keys, (QUEUE, PROBE))
    group = consumers(r, keys.queue(QUEUE).stream)
    live = live_workers(r, keys)
    dead = dead_consumers(r, keys)
    overdue = [c for c in dead if c.idle_s > GC_IDLE + GC_PERIOD + SLACK]

    ledger = system.ledger_lines()
    result = tally_all(load.expected, collector.final, ledger)
    kills = [(k.pid, k.at) for k in supervisor.kills]
    gaps = recovery_after_kills(ledger, kills)
    growth = (rss.samples[-1] - rss.samples[0]) / rss.samples[0]
    recorder.record(
        Figures(
            scenario="T19 soak",
            jobs=result.jobs,
            faults=f"{len(supervisor.kills)} worker SIGKILLs, one every {KILL_EVERY:g} s over "
            f"{warmup:g} s of warm-up and {profile.soak_seconds:g} s of load",
            lost=len(result.lost),
            duplicated=result.duplicated,
            explained=result.explained,
            recovery_s=round(max(gaps), 2) if gaps else None,
            details={
                **result.summary(),
                "kinds": dict(load.kinds),
                "cancel_answers": {str(k): v for k, v in load.cancel_answers.items()},
                "refused_creates": len(load.refused),
                "worker_restarts": supervisor.restarts,
                "drain_s": round(drain_s, 2),
                "retention_over": retained,
                **sizes,
                "dbsize_baseline": baseline_dbsize,
                "dbsize_end": dbsize,
                "keys_added": dict(end_keys - baseline_keys),
                "keys_missing": dict(baseline_keys - end_keys),
                "consumers": len(group),
                "live_workers": len(live),
                "dead_consumers": len(dead),
                "dead_consumers_holding": sum(c.pending for c in dead),
                "oldest_dead_consumer_idle_s": max((c.idle_s for c in dead), default=0.0),
                "waited_for_consumer_gc": wait_for_gc,
                "rss_kb_baseline": rss.samples[0],
                "rss_kb_max": max(rss.samples),
                "rss_kb_end": rss.samples[-1],
                "rss_growth_pct": round(growth * 100, 2),
                "asyncio_tasks_baseline": tasks_before,
                "asyncio_tasks_end": tasks_after,
                "slowest_restarts": [
                    f"{gap} s: {describe(load, collector.final, job_id)} runs={runs}"
                    for gap, job_id, runs in slowest_restarts(ledger, kills)
                ],
                "lost_jobs": [describe(load, collector.final, i) for i in result.lost[:5]],
            },
        )
    )
    assert load.refused == []
    assert result.lost == []
    assert result.unexplained == []
    assert max(gaps, default=0.0) <= LEASE + RECLAIM_INTERVAL + SLACK
    assert all(size == 0 for size in sizes.values()), sizes
    assert retained, f"keys beyond the baseline: {dict(end_keys - baseline_keys)}"
    optional_end = sum(n for k, n in end_keys.items() if k in optional)
    optional_baseline = sum(n for k, n in baseline_keys.items() if k in optional)
    assert dbsize - optional_end == baseline_dbsize - optional_baseline + 2
    assert [c for c in dead if c.pending] == []
    assert overdue == []
    if wait_for_gc:
        assert len(group) <= len(live)
    assert growth < RSS_GROWTH
    assert tasks_after == tasks_before
    redisio.assert_invariants(server.url, system.prefix)
