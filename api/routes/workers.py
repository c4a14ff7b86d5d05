"""`/workers`: the workers whose heartbeats are current."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conveyor.api.deps import keys_of, redis_deadline, redis_of, settings_of
from conveyor.store.workers import WorkerRegistry, worker_json

# A worker whose last heartbeat is older than this many heartbeat intervals (the API's
# heartbeat_seconds setting, which a deployment shares) is flagged stale: it is still
# listed until its heartbeat hash expires (3 intervals), but probably stuck or gone.
STALE_AFTER_HEARTBEATS = 2


async def list_workers(request: Request) -> Response:
    """Live workers, by id."""
    registry = WorkerRegistry(redis_of(request), keys_of(request))
    async with redis_deadline(request):
        live = await registry.live()
        seconds, micros = await redis_of(request).time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    stale_ms = settings_of(request).heartbeat_seconds * 1000 * STALE_AFTER_HEARTBEATS
    items = sorted(
        ({**worker_json(raw), "stale": _stale(raw, now_ms, stale_ms)} for raw in live),
        key=lambda w: str(w["id"]),
    )
    return JSONResponse({"items": items})


def _stale(raw: dict[str, object], now_ms: int, stale_ms: float) -> bool:
    """Whether the worker's last heartbeat (Redis clock, like `now_ms`) is overdue; a
    garbled `last_seen` counts as overdue."""
    try:
        last_seen = float(str(raw.get("last_seen")))
    except ValueError:
        return True
    return now_ms - last_seen > stale_ms


routes = [Route("/workers", list_workers, methods=["GET"])]
