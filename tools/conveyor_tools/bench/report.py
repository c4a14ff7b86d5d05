"""The benchmark's figures as one JSON-ready dict, and as a table for people."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from conveyor_tools.bench.drain import DrainResult
from conveyor_tools.bench.latency import LatencyResult
from conveyor_tools.bench.load import Rate
from conveyor_tools.bench.memory import MemoryResult
from conveyor_tools.bench.redisinfo import Delta, top_calls


def _r(value: float, digits: int = 3) -> float:
    return round(value, digits)


def versions(redis_version: str) -> dict[str, str]:
    try:
        conveyor = version("conveyor")
    except PackageNotFoundError:
        conveyor = "?"
    return {
        "python": platform.python_version(),
        "redis_server": redis_version,
        "conveyor": conveyor,
    }


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count() or 0,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "processor": platform.machine(),
    }


def rate(r: Rate, **extra: Any) -> dict[str, Any]:
    return {"jobs": r.jobs, "seconds": _r(r.seconds), "per_second": _r(r.per_second, 1), **extra}


def drained(d: DrainResult) -> dict[str, Any]:
    return {
        "workers": d.workers,
        "jobs": d.jobs,
        "wall_seconds": _r(d.wall_seconds),
        "per_second": _r(d.jobs / d.wall_seconds if d.wall_seconds > 0 else 0.0, 1),
        "steady_per_second": _r(d.steady_per_second, 1),
        "worker_rss_mib": {
            "after_startup": _r(d.rss.at_mark / 2**20, 1),
            "peak": _r(d.rss.peak / 2**20, 1),
            "end": _r(d.rss.end / 2**20, 1),
        },
    }


def latency(result: LatencyResult) -> dict[str, Any]:
    return {
        "offered_per_second": result.offered_per_second,
        "achieved_per_second": _r(result.achieved_per_second, 1),
        "jobs": result.jobs,
        "pickup_ms": {k: _r(v) for k, v in result.pickup_ms.as_dict().items()},
        "complete_ms": result.complete_ms.as_dict(),
    }


def cost(d: DrainResult, enqueue: Delta, memory: MemoryResult) -> dict[str, Any]:
    n = d.jobs
    lifecycle = Delta(
        enqueue.cpu + d.redis.cpu,
        {
            k: enqueue.calls.get(k, 0) + d.redis.calls.get(k, 0)
            for k in {*enqueue.calls, *d.redis.calls}
        },
        0,
    )
    return {
        "jobs": n,
        "worker_cpu_seconds_per_1000_jobs": _r(d.worker_cpu_per_1000),
        "redis_cpu_seconds_per_1000_jobs": _r(lifecycle.cpu / n * 1000),
        "redis_cpu_seconds_per_1000_jobs_enqueue": _r(enqueue.cpu / n * 1000),
        "redis_cpu_seconds_per_1000_jobs_drain": _r(d.redis.cpu / n * 1000),
        "redis_commands_per_job": _r(lifecycle.total_calls / n, 2),
        "redis_commands_per_job_enqueue": _r(enqueue.total_calls / n, 2),
        "redis_commands_per_job_drain": _r(d.redis.total_calls / n, 2),
        "redis_commands_per_job_by_command": top_calls(lifecycle, n),
        "redis_memory_bytes_per_waiting_job": _r(memory.bytes_per_job, 1),
        "memory_jobs": memory.jobs,
    }


def table(report: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []
    e = report["enqueue"]
    rows.append(
        (
            "enqueue: HTTP POST /jobs",
            f"{e['http_single']['per_second']:,.0f} jobs/s "
            f"({e['http_single']['clients']} connections, {e['http_single']['jobs']:,} jobs; "
            f"API CPU {e['http_single']['api_cpu_ms_per_request']:.2f} ms per request)",
        )
    )
    rows.append(
        (
            "enqueue: HTTP POST /jobs/batch",
            f"{e['http_batch']['per_second']:,.0f} jobs/s "
            f"(batches of {e['http_batch']['batch_size']}, {e['http_batch']['jobs']:,} jobs)",
        )
    )
    rows.append(
        (
            "enqueue: Client.enqueue_many",
            f"{e['client_enqueue_many']['per_second']:,.0f} "
            f"jobs/s (batches of {e['client_enqueue_many']['batch_size']}, "
            f"{e['client_enqueue_many']['jobs']:,} jobs)",
        )
    )
    for key, d in report["drain"].items():
        rows.append(
            (
                f"drain: {key.replace('_', ' ')}",
                f"{d['jobs']:,} jobs in {d['wall_seconds']:.2f} s = {d['per_second']:,.0f} "
                f"jobs/s; steady {d['steady_per_second']:,.0f} jobs/s; worker RSS "
                f"{d['worker_rss_mib']['after_startup']:.0f} -> "
                f"{d['worker_rss_mib']['end']:.0f} MiB",
            )
        )
    lat = report["latency"]
    for name, label, digits in (
        ("pickup_ms", "sent->started", 2),
        ("complete_ms", "created->completed", 0),
    ):
        p = lat[name]
        rows.append(
            (
                f"latency {label}",
                f"p50 {p['p50']:.{digits}f} / p95 {p['p95']:.{digits}f} / p99 "
                f"{p['p99']:.{digits}f} / max {p['max']:.{digits}f} ms at "
                f"{lat['achieved_per_second']:,.0f} jobs/s offered",
            )
        )
    c = report["cost"]
    rows.append(("worker CPU per 1,000 jobs", f"{c['worker_cpu_seconds_per_1000_jobs']:.3f} s"))
    rows.append(
        (
            "Redis CPU per 1,000 jobs",
            f"{c['redis_cpu_seconds_per_1000_jobs']:.3f} s "
            f"(enqueue {c['redis_cpu_seconds_per_1000_jobs_enqueue']:.3f} + drain "
            f"{c['redis_cpu_seconds_per_1000_jobs_drain']:.3f})",
        )
    )
    rows.append(
        (
            "Redis commands per job",
            f"{c['redis_commands_per_job']:.1f} "
            f"(enqueue {c['redis_commands_per_job_enqueue']:.1f} + drain "
            f"{c['redis_commands_per_job_drain']:.1f})",
        )
    )
    top = ", ".join(f"{k} {v:g}" for k, v in c["redis_commands_per_job_by_command"].items())
    rows.append(("  by command", top))
    rows.append(
        (
            "Redis memory per waiting job",
            f"{c['redis_memory_bytes_per_waiting_job']:,.0f} bytes ({c['memory_jobs']:,} jobs)",
        )
    )
    v = report["verification"]
    rows.append(
        (
            "verification",
            f"{v['jobs']:,} jobs, "
            + ("each completed exactly once" if v["ok"] else "; ".join(v["problems"])),
        )
    )
    m, ver = report["machine"], report["versions"]
    rows.append(("machine", f"{m['cpus']} CPUs, load {m['load_average']}, {m['platform']}"))
    rows.append(
        (
            "versions",
            f"Python {ver['python']}, redis-server {ver['redis_server']}, "
            f"conveyor {ver['conveyor']}",
        )
    )
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)
