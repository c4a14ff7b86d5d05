"""Drain rate and per-job cost: N queued echo jobs, then real worker processes."""

from __future__ import annotations

import time
from dataclasses import dataclass

from conveyor.redis_conn import connect_url_sync
from conveyor.states import Status
from conveyor.store.keys import Keys
from conveyor_tools.bench import hashes
from conveyor_tools.bench.procs import start_workers, stop_all
from conveyor_tools.bench.redisinfo import Delta, delta, sample
from conveyor_tools.bench.server import Target

POLL_SECONDS = 0.02
CPU_MARK_FRACTION = 0.05  # worker CPU is counted from here on: startup is not per-job cost


@dataclass(frozen=True)
class DrainResult:
    workers: int
    jobs: int
    completed: int
    wall_seconds: float  # first worker started -> last job finished
    steady_per_second: float  # completions between the 10th and the 90th percentile
    worker_cpu_per_1000: float  # CPU seconds of all worker processes per 1,000 jobs
    redis: Delta  # INFO differences over the drain
    timed_out: bool
    rss: RssTrace  # resident memory of the worker processes (summed) during the drain


@dataclass(frozen=True)
class RssTrace:
    """Worker resident memory (bytes, all worker processes together) while draining."""

    at_mark: int  # when CPU_MARK_FRACTION of the jobs had completed (start-up done)
    peak: int
    end: int  # when the last job had completed

    @property
    def growth(self) -> int:
        return self.end - self.at_mark


def steady_rate(finished: list[int]) -> float:
    """Jobs per second between the 10% and the 90% completion marks."""
    if len(finished) < 10:
        return 0.0
    ordered = sorted(finished)
    lo, hi = len(ordered) // 10, (len(ordered) * 9) // 10
    span = (ordered[hi] - ordered[lo]) / 1000
    return (hi - lo) / span if span > 0 else 0.0


def drain(
    target: Target, queue: str, ids: list[str], workers: int, concurrency: int, timeout: float
) -> DrainResult:
    n = len(ids)
    client = connect_url_sync(target.url, timeout_seconds=30)
    completed_key = Keys(target.prefix).queue(queue).index(Status.COMPLETED)
    polls = 0
    try:
        before = sample(client)
        start_ms = hashes.now_ms(client)
        children = start_workers(target, queue, workers, concurrency)
        try:
            mark: tuple[float, int] | None = None
            rss_mark = rss_peak = 0
            deadline = time.monotonic() + timeout
            done = 0
            while True:
                done = int(client.zcard(completed_key))
                polls += 1
                rss = sum(c.rss for c in children)
                rss_peak = max(rss_peak, rss)
                if mark is None and done >= max(1, int(n * CPU_MARK_FRACTION)):
                    mark = (sum(c.cpu for c in children), done)
                    rss_mark = rss
                if done >= n or time.monotonic() > deadline:
                    break
                if any(c.popen.poll() is not None for c in children):
                    break
                time.sleep(POLL_SECONDS)
            cpu_end = sum(c.cpu for c in children)
            rss_end = sum(c.rss for c in children)
            after = sample(client)
        finally:
            stop_all(children)
        times = hashes.read(client, target.prefix, queue, ids)
    finally:
        client.close()
    finished = [t.finished_at for t in times if t.finished_at is not None]
    if mark is not None and done > mark[1]:
        cpu_per_job = (cpu_end - mark[0]) / (done - mark[1])
    else:
        cpu_per_job = cpu_end / max(done, 1)
    return DrainResult(
        workers=workers,
        jobs=n,
        completed=done,
        wall_seconds=(max(finished) - start_ms) / 1000 if finished else 0.0,
        steady_per_second=steady_rate(finished),
        worker_cpu_per_1000=cpu_per_job * 1000,
        redis=delta(before, after, {"zcard": polls, "time": 1}),
        timed_out=done < n,
        rss=RssTrace(at_mark=rss_mark, peak=max(rss_peak, rss_end), end=rss_end),
    )
