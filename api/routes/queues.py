"""`/queues`: how much work each queue holds, and in which state."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conveyor.api.deps import keys_of, redis_deadline, redis_of
from conveyor.api.problems import problem_response
from conveyor.errors import ValidationError
from conveyor.ids import validate_queue
from conveyor.store.inspect import all_queue_stats, queue_stats


def queue_not_found(name: str | None) -> Response:
    detail = f"no queue is named {name}" if name else "no queue has this name"
    return problem_response(404, "queue-not-found", "Not Found", detail)


async def list_queues(request: Request) -> Response:
    """Every known queue, by name."""
    async with redis_deadline(request):
        stats = await all_queue_stats(redis_of(request), keys_of(request))
    return JSONResponse({"items": [s.to_json() for s in sorted(stats, key=lambda s: s.name)]})


async def get_queue(request: Request) -> Response:
    """One queue; 404 when it is unknown, or when the name could not be one (such a name
    never reaches Redis)."""
    try:
        name = validate_queue(request.path_params["name"], "name")
    except ValidationError:
        return queue_not_found(None)
    async with redis_deadline(request):
        stats = await queue_stats(redis_of(request), keys_of(request), name)
    if stats is None:
        return queue_not_found(name)
    return JSONResponse(stats.to_json())


routes = [
    Route("/queues", list_queues, methods=["GET"]),
    Route("/queues/{name}", get_queue, methods=["GET"]),
]
