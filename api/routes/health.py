"""Probes: `/healthz` (the process answers) and `/readyz` (and so does Redis).

`/readyz` also tells an operator what it saw while asking Redis: the live workers (at most
`READY_MAX_WORKERS`, the most recently seen), the queues with their waiting jobs and how
many of those workers consume them, and a warning for each queue whose jobs wait with no
live worker listing it, or for a Redis setting that loses jobs on a restart (AOF off) or
could not be checked. Its Redis work does not grow with the queues or the workers: the
queues come from the statistics this process last read for `GET /queues` or `/metrics`
(`StatsCache.last`, no Redis command; none until one was read), never read by the probe.
The warnings never make it fail: an API with no worker behind it can still accept jobs.
What does make it fail (503 `redis-unsafe`) is a Redis that drops jobs by itself while it
runs: a maxmemory-policy other than noeviction. Accepting jobs there would promise what
Redis will not keep.

The detail (workers, queues, warnings, why Redis is unsafe) is only for a request that may
read (`api.auth.may_read`: a valid token, or an open API); anyone else learns only ready
or not, and costs only the server check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conveyor.api.auth import may_read
from conveyor.api.deps import keys_of, queue_stats_of, redis_deadline, redis_of
from conveyor.api.problems import RETRY_AFTER_SECONDS, problem_response
from conveyor.redis_conn import check_redis
from conveyor.store.workers import WorkerRegistry, worker_json
from conveyor.values import QueueStats

READY_MAX_WORKERS = 100  # workers /readyz reads and lists at most
WORKER_FIELDS = ("id", "host", "pid", "queues", "concurrency", "in_flight", "last_seen")


async def healthz(request: Request) -> Response:
    """Liveness: never touches Redis, so a Redis outage does not get the API restarted."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: Redis answers within the deadline (else 503 problem+json), with what it
    said about workers and queues.

    A constant amount of Redis work however many queues and workers there are: the
    server settings (one command per server, which is also the ping) and at most
    `READY_MAX_WORKERS` workers (two round trips), at once; the queues are the last
    statistics this process read for other callers.
    """
    redis, keys = redis_of(request), keys_of(request)
    detailed = may_read(request)
    async with redis_deadline(request):
        if detailed:
            (live, workers_total), check = await asyncio.gather(
                WorkerRegistry(redis, keys).recent(READY_MAX_WORKERS), check_redis(redis)
            )
        else:
            check = await check_redis(redis)
    if check.unsafe:
        return problem_response(
            503,
            "redis-unsafe",
            "Service Unavailable",
            "; ".join(check.unsafe) if detailed else "Redis is not safe for jobs",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if not detailed:
        return JSONResponse({"status": "ready"})
    cache = queue_stats_of(request)
    cached = cache.last()
    stats = cached.snapshot.items if cached is not None else ()
    body = readiness(stats, live, check.warnings)
    body["workers_total"] = workers_total
    body["queues_age_seconds"] = None if cached is None else round(cache.age(cached), 3)
    return JSONResponse(body)


def readiness(
    stats: Sequence[QueueStats],
    live: Sequence[dict[str, Any]],
    redis_warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """The `/readyz` body from the queue statistics, the live workers' heartbeats and what
    `check_redis` warned about."""
    workers = sorted(
        ({k: v for k, v in worker_json(raw).items() if k in WORKER_FIELDS} for raw in live),
        key=lambda w: str(w["id"]),
    )
    consumes = [set(w["queues"]) for w in workers if isinstance(w["queues"], list)]
    queues: list[dict[str, Any]] = []
    warnings: list[str] = []
    for s in sorted(stats, key=lambda s: s.name):
        consumed_by = sum(1 for queues in consumes if s.name in queues)
        queues.append(
            {
                "name": s.name,
                "waiting": s.waiting,
                "consumers": s.consumers,
                "live_workers": consumed_by,
            }
        )
        if s.waiting > 0 and consumed_by == 0:
            jobs = "job" if s.waiting == 1 else "jobs"
            warnings.append(
                f"queue '{s.name}' has {s.waiting} waiting {jobs} and no live worker consumes it"
            )
    warnings += redis_warnings
    return {"status": "ready", "workers": workers, "queues": queues, "warnings": warnings}


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
