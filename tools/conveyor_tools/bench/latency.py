"""Pickup latency at a fixed offered load.

*Pickup* is sent -> handler started, in microseconds of the host clock: the producer notes
the clock just before it sends a batch, the `bench.stamp` handler returns the clock when it
starts (see `worker.bench.stamp`). *Complete* is created -> finished from the job hash
(Redis clock, whole milliseconds).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import redis

from conveyor.client import Client
from conveyor.redis_conn import connect_url_sync
from conveyor.states import Status
from conveyor.store.keys import Keys
from conveyor_tools.bench import hashes
from conveyor_tools.bench.procs import start_workers, stop_all
from conveyor_tools.bench.server import Target
from conveyor_tools.bench.stamp import JOB_TYPE

TICK_SECONDS = 0.01


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p95: float
    p99: float
    max: float

    def as_dict(self) -> dict[str, float]:
        return {"p50": self.p50, "p95": self.p95, "p99": self.p99, "max": self.max}


@dataclass(frozen=True)
class LatencyResult:
    offered_per_second: float  # the target rate
    achieved_per_second: float  # what the paced producer actually enqueued
    jobs: int
    completed: int
    pickup_ms: Percentiles  # sent -> handler started, host clock (microsecond resolution)
    complete_ms: Percentiles  # created -> finished, Redis clock (millisecond resolution)
    ids: list[str]


def percentiles(values: list[float]) -> Percentiles:
    if not values:
        return Percentiles(0.0, 0.0, 0.0, 0.0)
    ordered = sorted(values)

    def rank(p: float) -> float:  # nearest rank
        index = max(0, min(len(ordered) - 1, round(p * len(ordered) + 0.5) - 1))
        return float(ordered[index])

    return Percentiles(rank(0.50), rank(0.95), rank(0.99), float(ordered[-1]))


async def _paced(
    target: Target, queue: str, rate: float, seconds: float
) -> tuple[list[str], dict[str, int], float]:
    """Enqueue at `rate` jobs/s for `seconds`: every tick, the jobs due so far. Also the
    host clock (epoch microseconds) just before each job was sent."""
    ids: list[str] = []
    sent: dict[str, int] = {}
    async with Client.from_url(target.url, key_prefix=target.prefix) as client:
        start = time.perf_counter()
        total = int(rate * seconds)
        while len(ids) < total:
            elapsed = time.perf_counter() - start
            if elapsed > seconds * 3:  # a producer that cannot keep up still stops
                break
            due = min(total, int(rate * elapsed) + 1)
            if due > len(ids):
                items = [(JOB_TYPE, {"i": i}, {"queue": queue}) for i in range(len(ids), due)]
                now_us = time.time_ns() // 1000
                for job in await client.enqueue_many(items):
                    ids.append(job.id)
                    sent[job.id] = now_us
            await asyncio.sleep(TICK_SECONDS)
        return ids, sent, time.perf_counter() - start


def _wait_workers(client: redis.Redis, prefix: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while int(client.zcard(Keys(prefix).workers)) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def run(
    target: Target,
    queue: str,
    rate: float,
    seconds: float,
    workers: int,
    concurrency: int,
    timeout: float,
) -> LatencyResult:
    client = connect_url_sync(target.url, timeout_seconds=30)
    completed_key = Keys(target.prefix).queue(queue).index(Status.COMPLETED)
    try:
        already = int(client.zcard(Keys(target.prefix).workers))
        children = start_workers(
            target, queue, workers, concurrency, handlers="conveyor_tools.bench.stamp"
        )
        try:
            _wait_workers(client, target.prefix, already + workers, timeout=30)
            ids, sent, elapsed = asyncio.run(_paced(target, queue, rate, seconds))
            deadline = time.monotonic() + timeout
            done = 0
            while time.monotonic() < deadline:
                done = int(client.zcard(completed_key))
                if done >= len(ids) or any(c.popen.poll() is not None for c in children):
                    break
                time.sleep(0.02)
        finally:
            stop_all(children)
        times = hashes.read(client, target.prefix, queue, ids)
    finally:
        client.close()
    pickup = [
        (t.result - sent[job_id]) / 1000
        for job_id, t in zip(ids, times, strict=True)
        if isinstance(t.result, int)
    ]
    complete = [t.finished_at - t.created_at for t in times if t.finished_at is not None]
    return LatencyResult(
        offered_per_second=rate,
        achieved_per_second=len(ids) / elapsed if elapsed > 0 else 0.0,
        jobs=len(ids),
        completed=done,
        pickup_ms=percentiles(pickup),
        complete_ms=percentiles([float(v) for v in complete]),
        ids=ids,
    )
