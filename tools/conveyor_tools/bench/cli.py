"""`conveyor bench`: run every phase against a private Redis and real processes, report."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, TypeVar

import click

from conveyor.redis_conn import connect_url_sync
from conveyor_tools.bench import drain, growth, latency, load, memory, report, verify
from conveyor_tools.bench.procs import start_api
from conveyor_tools.bench.redisinfo import delta, sample, server_version
from conveyor_tools.bench.server import Target, bench_redis

T = TypeVar("T")


@dataclass(frozen=True)
class Sizes:
    http_jobs: int = 2_000
    http_clients: int = 16
    batch_jobs: int = 20_000
    batch_size: int = 500
    client_jobs: int = 20_000
    client_batch: int = 1_000
    drain_jobs: int = 20_000
    rate: float = 500.0
    latency_seconds: float = 10.0
    latency_workers: int = 1
    memory_jobs: int = 100_000
    concurrency: int = 64
    phase_timeout: float = 600.0


QUICK = Sizes(
    http_jobs=200,
    http_clients=8,
    batch_jobs=2_000,
    client_jobs=2_000,
    client_batch=500,
    drain_jobs=2_000,
    rate=200.0,
    latency_seconds=3.0,
    memory_jobs=5_000,
    phase_timeout=60.0,
)


def _step(name: str, action: Callable[[], T]) -> T:
    click.echo(f"bench: {name} ...", err=True, nl=False)
    start = time.perf_counter()
    result = action()
    click.echo(f" {time.perf_counter() - start:.1f} s", err=True)
    return result


class Bench:
    def __init__(self, target: Target, sizes: Sizes) -> None:
        self.target = target
        self.sizes = sizes
        self.runs: dict[str, list[str]] = {}  # queue -> ids of jobs that must complete once

    def enqueue_phase(self) -> dict[str, Any]:
        s, queue = self.sizes, "bench-enqueue"
        api, api_url = _step("starting conveyor api", lambda: start_api(self.target))
        try:
            cpu_before = api.cpu
            single, ids1 = _step(
                f"HTTP POST /jobs x {s.http_jobs}",
                lambda: load.http_single(api_url, queue, s.http_jobs, s.http_clients),
            )
            api_cpu_ms = (api.cpu - cpu_before) / max(single.jobs, 1) * 1000
            batch, ids2 = _step(
                f"HTTP POST /jobs/batch x {s.batch_jobs}",
                lambda: load.http_batch(api_url, queue, s.batch_jobs, s.batch_size),
            )
        finally:
            api.stop()
        many, ids3 = _step(
            f"Client.enqueue_many x {s.client_jobs}",
            lambda: load.fill(
                self.target.url, self.target.prefix, queue, s.client_jobs, s.client_batch
            ),
        )
        self.runs[queue] = ids1 + ids2 + ids3
        # These jobs must run too (each exactly once): two workers work them off, untimed.
        _step(
            f"running the {len(self.runs[queue]):,} enqueued jobs",
            lambda: drain.drain(
                self.target, queue, self.runs[queue], 2, s.concurrency, s.phase_timeout
            ),
        )
        return {
            "http_single": report.rate(
                single, clients=s.http_clients, api_cpu_ms_per_request=round(api_cpu_ms, 3)
            ),
            "http_batch": report.rate(batch, batch_size=s.batch_size),
            "client_enqueue_many": report.rate(many, batch_size=s.client_batch),
        }

    def drain_phase(self, workers: int) -> tuple[drain.DrainResult, Any]:
        s, queue = self.sizes, f"bench-drain-{workers}"
        client = connect_url_sync(self.target.url, timeout_seconds=30)
        try:
            before = sample(client)
            _, ids = _step(
                f"queueing {s.drain_jobs:,} jobs",
                lambda: load.fill(self.target.url, self.target.prefix, queue, s.drain_jobs, 1000),
            )
            enqueue_cost = delta(before, sample(client))
        finally:
            client.close()
        self.runs[queue] = ids
        result = _step(
            f"drain with {workers} worker(s)",
            lambda: drain.drain(self.target, queue, ids, workers, s.concurrency, s.phase_timeout),
        )
        return result, enqueue_cost

    def latency_phase(self) -> latency.LatencyResult:
        s = self.sizes
        result = _step(
            f"latency at {s.rate:g} jobs/s for {s.latency_seconds:g} s",
            lambda: latency.run(
                self.target, "bench-latency", s.rate, s.latency_seconds,
                s.latency_workers, s.concurrency, s.phase_timeout,
            ),
        )  # fmt: skip
        self.runs["bench-latency"] = result.ids
        return result

    def run(self) -> dict[str, Any]:
        s = self.sizes
        enqueue = self.enqueue_phase()
        one, enqueue_cost = self.drain_phase(1)
        two, _ = self.drain_phase(2)
        lat = self.latency_phase()
        mem = _step(
            f"memory of {s.memory_jobs:,} waiting jobs",
            lambda: memory.run(self.target, "bench-memory", s.memory_jobs, 1000),
        )
        client = connect_url_sync(self.target.url, timeout_seconds=30)
        try:
            found = _step(
                "verifying", lambda: verify.problems(client, self.target.prefix, self.runs)
            )
            redis_version = server_version(client)
        finally:
            client.close()
        return {
            "versions": report.versions(redis_version),
            "machine": report.machine(),
            "settings": {
                **asdict(s),
                "redis": "private redis-server (AOF everysec)" if self.target.private else "given",
                "job_type": load.JOB_TYPE,
            },
            "enqueue": enqueue,
            "drain": {"1_worker": report.drained(one), "2_workers": report.drained(two)},
            "latency": report.latency(lat),
            "cost": report.cost(one, enqueue_cost, mem),
            "verification": {
                "jobs": sum(len(ids) for ids in self.runs.values()),
                "ok": not found,
                "problems": found,
            },
        }


def run_growth(
    target: Target, sizes: list[int], concurrency: int, timeout: float
) -> dict[str, Any]:
    """The growth study: one `growth.step` per size, with one API process for the pages."""
    api, api_url = _step("starting conveyor api", lambda: start_api(target))
    steps: list[dict[str, Any]] = []
    try:
        for n in sizes:
            result = _step(
                f"{n:,} waiting jobs: enqueue, pages, drain",
                functools.partial(growth.step, target, api_url, n, concurrency, timeout),
            )
            steps.append(growth.as_dict(result))
    finally:
        api.stop()
    client = connect_url_sync(target.url, timeout_seconds=30)
    try:
        redis_version = server_version(client)
    finally:
        client.close()
    problems = [p for s in steps for p in s["problems"]]
    return {
        "versions": report.versions(redis_version),
        "machine": report.machine(),
        "settings": {"concurrency": concurrency, "page": growth.PAGE, "job_type": load.JOB_TYPE},
        "growth": steps,
        "verification": {"jobs": sum(sizes), "ok": not problems, "problems": problems},
    }


def _growth_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(
            "a comma-separated list of job counts", param_hint="--growth"
        ) from None
    if not sizes or any(n < 10 for n in sizes):
        raise click.BadParameter("each size must be at least 10", param_hint="--growth")
    return sizes


def _sizes(quick: bool, overrides: dict[str, Any]) -> Sizes:
    base = QUICK if quick else Sizes()
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


@click.command("bench")
@click.option("--quick", is_flag=True, help="Small sizes: the whole run takes ~10-20 s.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--redis-url", default=None,
              help="Use this Redis (a unique key prefix, deleted afterwards) instead of a "
                   "private redis-server on a free port.")  # fmt: skip
@click.option("--http-jobs", type=click.IntRange(1), help="Jobs POSTed one by one [2000].")
@click.option(
    "--http-clients",
    type=click.IntRange(1),
    help="Concurrent keep-alive connections doing so [16].",
)
@click.option("--batch-jobs", type=click.IntRange(1), help="Jobs POSTed in batches [20000].")
@click.option("--batch-size", type=click.IntRange(1, 1000), help="Jobs per POST /jobs/batch [500].")
@click.option("--client-jobs", type=click.IntRange(1), help="Jobs via enqueue_many [20000].")
@click.option("--drain-jobs", type=click.IntRange(10), help="Queued jobs per drain run [20000].")
@click.option("--rate", type=click.FloatRange(1), help="Offered load of the latency phase [500].")
@click.option("--latency-seconds", type=click.FloatRange(0.5, 600), help="Its duration [10].")
@click.option("--latency-workers", type=click.IntRange(1, 16), help="Its worker processes [1].")
@click.option("--memory-jobs", type=click.IntRange(1), help="Waiting jobs measured [100000].")
@click.option("--concurrency", type=click.IntRange(1, 1000), help="Per worker process [64].")
@click.option("--phase-timeout", type=click.FloatRange(1), help="Longest wait of a phase [600].")
@click.option("--growth", "growth_sizes", default=None, metavar="N,N,...",
              help="Instead of the phases above: for each number of waiting jobs (e.g. "
                   "1000,10000,100000,1000000) measure enqueue rate, memory, GET /jobs "
                   "pages and drain rate.")  # fmt: skip
def bench_command(
    quick: bool, as_json: bool, redis_url: str | None, growth_sizes: str | None, **overrides: Any
) -> None:
    """Measure enqueue rate, drain rate, pickup latency and per-job cost on this machine.

    Runs real `conveyor api` and `conveyor worker` processes on 127.0.0.1 with the built-in
    `echo` handler, then checks that every job completed exactly once (exit status 1 if not).
    """
    sizes = _sizes(quick, overrides)
    study = _growth_sizes(growth_sizes) if growth_sizes is not None else None
    with bench_redis(redis_url) as target:
        if study is None:
            result = Bench(target, sizes).run()
        else:
            result = run_growth(target, study, sizes.concurrency, sizes.phase_timeout)
    result["profile"] = "growth" if study else "quick" if quick else "full"
    if as_json:
        click.echo(json.dumps(result, indent=2))
    elif study is not None:
        click.echo(growth.table(result["growth"]))
    else:
        click.echo(report.table(result))
    if not result["verification"]["ok"]:
        click.echo("bench: not every job completed exactly once", err=True)
        sys.exit(1)
