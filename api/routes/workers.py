"""`/workers`: the workers whose heartbeats are current."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.deps import keys_of, redis_deadline, redis_of
from shared.ids import ms_to_rfc3339
from shared.store.workers import WorkerRegistry


def _int(value: object) -> int | None:
    """A heartbeat field as an integer; None when it is missing or not one."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _time(value: object) -> str | None:
    ms = _int(value)
    if ms is None and isinstance(value, str):  # written as a float by some writer
        try:
            ms = int(float(value))
        except ValueError:
            return None
    return None if ms is None or ms < 0 else ms_to_rfc3339(ms)


def worker_json(raw: Mapping[str, Any]) -> dict[str, object]:
    """The heartbeat hash of one worker (every value a string) in its JSON types."""
    queues = raw.get("queues")
    return {
        "id": raw["id"],
        "host": raw.get("host"),
        "pid": _int(raw.get("pid")),
        "queues": [q for q in queues.split(",") if q] if isinstance(queues, str) else [],
        "concurrency": _int(raw.get("concurrency")),
        "in_flight": _int(raw.get("in_flight")),
        "processed": _int(raw.get("processed")),
        "failed": _int(raw.get("failed")),
        "started_at": _time(raw.get("started_at")),
        "last_seen": _time(raw.get("last_seen")),
    }


async def list_workers(request: Request) -> Response:
    """Live workers, by id."""
    registry = WorkerRegistry(redis_of(request), keys_of(request))
    async with redis_deadline(request):
        live = await registry.live()
    items = sorted((worker_json(raw) for raw in live), key=lambda w: str(w["id"]))
    return JSONResponse({"items": items})


routes = [Route("/workers", list_workers, methods=["GET"])]
