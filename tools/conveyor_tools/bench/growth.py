"""How cost grows with the number of waiting jobs (`conveyor bench --growth 1000,...`).

For each size N, on a fresh queue: enqueue N jobs with `Client.enqueue_many` (rate, Redis
memory per job), time `GET /jobs` pages while all N wait in the index (first page, the
page after it, the first page filtered by status), then drain them with one worker (rate,
worker CPU and resident memory), check that each completed, and delete the queue's keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import redis

from conveyor.redis_conn import connect_url_sync
from conveyor.states import Status
from conveyor.store.keys import Keys
from conveyor_tools.bench import drain, http_load, load
from conveyor_tools.bench.latency import Percentiles, percentiles
from conveyor_tools.bench.redisinfo import sample
from conveyor_tools.bench.server import Target, delete_prefix, forget_queue

PAGE = 50
PAGE_REQUESTS = 30


@dataclass(frozen=True)
class GrowthStep:
    jobs: int
    enqueue: load.Rate
    bytes_per_job: float
    first_page_ms: Percentiles  # GET /jobs?queue=..&limit=50 with every job waiting
    next_page_ms: Percentiles  # the page after it (cursor)
    status_page_ms: Percentiles  # GET /jobs?queue=..&status=pending&limit=50
    drained: drain.DrainResult
    problems: list[str]


def _pages(api_url: str, queue: str) -> tuple[Percentiles, Percentiles, Percentiles]:
    def timed(path: str) -> tuple[Percentiles, Any]:
        seconds, body = http_load.get_timed(api_url, path, PAGE_REQUESTS)
        return percentiles([s * 1000 for s in seconds]), body

    first, page = timed(f"/jobs?queue={queue}&limit={PAGE}")
    cursor = page.get("next_cursor")
    if cursor:
        following, _ = timed(f"/jobs?queue={queue}&limit={PAGE}&cursor={quote(cursor)}")
    else:  # a single page: nothing follows it
        following = Percentiles(0.0, 0.0, 0.0, 0.0)
    by_status, _ = timed(f"/jobs?queue={queue}&status=pending&limit={PAGE}")
    return first, following, by_status


def _problems(client: redis.Redis, target: Target, queue: str, n: int) -> list[str]:
    q = Keys(target.prefix).queue(queue)
    completed = int(client.zcard(q.index(Status.COMPLETED)))
    found = [] if completed == n else [f"{queue}: {completed:,} of {n:,} jobs completed"]
    for status in (Status.PENDING, Status.RUNNING, Status.FAILED, Status.RETRYING):
        left = int(client.zcard(q.index(status)))
        if left:
            found.append(f"{queue}: {left:,} jobs left {status.value}")
    return found


def step(target: Target, api_url: str, n: int, concurrency: int, timeout: float) -> GrowthStep:
    queue = f"bench-growth-{n}"
    client = connect_url_sync(target.url, timeout_seconds=60)
    try:
        before = sample(client)
        rate, ids = load.fill(target.url, target.prefix, queue, n, 1000)
        after = sample(client)
        first, following, by_status = _pages(api_url, queue)
        drained = drain.drain(target, queue, ids, 1, concurrency, timeout)
        problems = _problems(client, target, queue, n)
        delete_prefix(target.url, Keys(target.prefix).queue(queue).base)
        forget_queue(client, target.prefix, queue, ids)
    finally:
        client.close()
    return GrowthStep(
        jobs=n,
        enqueue=rate,
        bytes_per_job=(after.used_memory - before.used_memory) / max(n, 1),
        first_page_ms=first,
        next_page_ms=following,
        status_page_ms=by_status,
        drained=drained,
        problems=problems,
    )


def as_dict(s: GrowthStep) -> dict[str, Any]:
    d = s.drained
    return {
        "jobs": s.jobs,
        "enqueue_per_second": round(s.enqueue.per_second, 1),
        "redis_memory_bytes_per_waiting_job": round(s.bytes_per_job, 1),
        "get_jobs_first_page_ms": _ms(s.first_page_ms),
        "get_jobs_next_page_ms": _ms(s.next_page_ms),
        "get_jobs_status_page_ms": _ms(s.status_page_ms),
        "drain_per_second": round(d.jobs / d.wall_seconds if d.wall_seconds > 0 else 0.0, 1),
        "drain_steady_per_second": round(d.steady_per_second, 1),
        "worker_cpu_seconds_per_1000_jobs": round(d.worker_cpu_per_1000, 3),
        "worker_rss_mib": {
            "after_startup": round(d.rss.at_mark / 2**20, 1),
            "peak": round(d.rss.peak / 2**20, 1),
            "end": round(d.rss.end / 2**20, 1),
        },
        "problems": s.problems,
    }


def _ms(p: Percentiles) -> dict[str, float]:
    return {"p50": round(p.p50, 2), "p99": round(p.p99, 2), "max": round(p.max, 2)}


def table(steps: list[dict[str, Any]]) -> str:
    header = (
        "waiting jobs",
        "enqueue/s",
        "B/job",
        "GET /jobs p50 ms (first/next/status)",
        "drain/s (steady)",
        "worker CPU s/1k",
        "worker RSS MiB",
    )
    rows = [header]
    for s in steps:
        rows.append(
            (
                f"{s['jobs']:,}",
                f"{s['enqueue_per_second']:,.0f}",
                f"{s['redis_memory_bytes_per_waiting_job']:,.0f}",
                f"{s['get_jobs_first_page_ms']['p50']:.2f} / "
                f"{s['get_jobs_next_page_ms']['p50']:.2f} / "
                f"{s['get_jobs_status_page_ms']['p50']:.2f}",
                f"{s['drain_per_second']:,.0f} ({s['drain_steady_per_second']:,.0f})",
                f"{s['worker_cpu_seconds_per_1000_jobs']:.3f}",
                f"{s['worker_rss_mib']['after_startup']:.0f} -> "
                f"{s['worker_rss_mib']['end']:.0f} (peak {s['worker_rss_mib']['peak']:.0f})",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
