"""`/workers`: the workers whose heartbeats are current."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.deps import keys_of, redis_deadline, redis_of
from shared.store.workers import WorkerRegistry, worker_json


async def list_workers(request: Request) -> Response:
    """Live workers, by id."""
    registry = WorkerRegistry(redis_of(request), keys_of(request))
    async with redis_deadline(request):
        live = await registry.live()
    items = sorted((worker_json(raw) for raw in live), key=lambda w: str(w["id"]))
    return JSONResponse({"items": items})


routes = [Route("/workers", list_workers, methods=["GET"])]
