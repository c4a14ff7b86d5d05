"""Throughput with 1 and 3 Cluster masters (and one standalone server) on this machine.

    python -m tests.cluster.measure [--jobs 20000] [--queues 6] [--workers 2]

For each Redis: enqueue `--jobs` echo jobs spread over `--queues` queues with the Python
client (`enqueue_many`, 1,000 per call), then start `--workers` real `conveyor worker`
processes (concurrency 50, every queue) and time until every job completed, noting how
busy each Redis process was meanwhile. Nodes run with AOF (everysec), as `conveyor dev`
runs Redis. The figures in docs/scaling.md come
from this script; on a machine with few cores the Python processes, not Redis, are the
limit, which is what they show.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from conveyor.client import Client
from tests.cluster.servers import LocalCluster
from tests.e2e.system import CONVEYOR
from tests.helpers.redis_server import RedisServer

BATCH = 1000
PREFIX = "measure"


@contextmanager
def redis_at(kind: str, directory: Path) -> Iterator[tuple[str, list[int]]]:
    """The URL and node ports of a fresh Redis of `kind`: standalone, cluster-1, cluster-3."""
    if kind == "standalone":
        server = RedisServer(directory, appendonly=True)
        server.start()
        try:
            yield server.url, [server.port]
        finally:
            server.stop()
        return
    cluster = LocalCluster(directory, masters=int(kind.split("-")[1]), appendonly=True)
    try:
        cluster.start()
        yield cluster.url, cluster.ports
    finally:
        cluster.stop()


def redis_cpu(ports: list[int]) -> list[float]:
    """CPU seconds (user + sys) each node has used so far."""
    out = []
    for port in ports:
        client = redis.Redis(port=port, socket_timeout=10)
        try:
            info = client.info("cpu")
        finally:
            client.close()
        out.append(float(info["used_cpu_user"]) + float(info["used_cpu_sys"]))
    return out


async def enqueue(url: str, jobs: int, queues: list[str]) -> float:
    """Jobs per second created with enqueue_many."""
    async with Client.from_url(url, key_prefix=PREFIX, timeout_seconds=30) as client:
        started = time.perf_counter()
        for start in range(0, jobs, BATCH):
            await client.enqueue_many(
                [
                    ("echo", i, {"queue": queues[i % len(queues)]})
                    for i in range(start, start + BATCH)
                ]
            )
        return jobs / (time.perf_counter() - started)


async def completed(url: str) -> int:
    async with Client.from_url(url, key_prefix=PREFIX, timeout_seconds=30) as client:
        return sum(q.completed for q in await client.queues())


def drain(
    url: str, jobs: int, queues: list[str], workers: int, timeout: float
) -> tuple[float, float]:
    """Jobs per second run by `workers` worker processes, from the first completed job to
    the last (process start-up is not counted), and how long that took."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")},
        "CONVEYOR_REDIS_URL": url,
        "CONVEYOR_KEY_PREFIX": PREFIX,
        "CONVEYOR_QUEUES": ",".join(queues),
        "CONVEYOR_CONCURRENCY": "50",
        "CONVEYOR_LOG_LEVEL": "WARNING",
    }
    processes = [
        subprocess.Popen([CONVEYOR, "worker"], env=env, stdout=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    try:
        deadline = time.perf_counter() + timeout
        first: tuple[float, int] | None = None
        while (done := asyncio.run(completed(url))) < jobs:
            if first is None and done:
                first = (time.perf_counter(), done)
            if time.perf_counter() > deadline:
                raise TimeoutError(f"not every job completed within {timeout} s")
            time.sleep(0.05)
        started, already = first or (time.perf_counter() - 1e-3, 0)
        took = time.perf_counter() - started
        return (jobs - already) / took, took
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            p.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--queues", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--kinds", default="standalone,cluster-1,cluster-3")
    args = parser.parse_args()
    queues = [f"q{i}" for i in range(args.queues)]
    results: dict[str, Any] = {}
    for kind in args.kinds.split(","):
        with (
            tempfile.TemporaryDirectory(prefix=f"conveyor-{kind}-") as tmp,
            redis_at(kind, Path(tmp)) as (url, ports),
        ):
            rate_in = asyncio.run(enqueue(url, args.jobs, queues))
            before = redis_cpu(ports)
            rate_out, took = drain(url, args.jobs, queues, args.workers, args.timeout)
            used = [b - a for a, b in zip(before, redis_cpu(ports), strict=True)]
        results[kind] = {
            "enqueue_per_s": round(rate_in),
            "drain_per_s": round(rate_out),
            # share of one core each Redis process used while the workers drained
            "redis_busy_per_node": [f"{u / took:.0%}" for u in used],
        }
        print(kind, results[kind], flush=True)
    print(json.dumps({"settings": vars(args), "results": results, "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
