"""`/queues/{name}/limits`: the concurrency and rate limits of a queue's limit keys
(ADR 0017). A limit may be set before the queue holds any job; the number of limit keys
per queue is bounded (`max_limits_per_queue`, 409 beyond)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conveyor import ids
from conveyor.api.body import IGNORED_BODY_BYTES, check_ignored_body, read_json_object
from conveyor.api.deps import keys_of, redis_deadline, redis_of, settings_of
from conveyor.api.problems import problem_response
from conveyor.api.routes.queue_actions import _query
from conveyor.store.limits import (
    LimitCountReached,
    LimitsStore,
    parse_limit,
    validate_limit_key,
)

LIMIT_BODY_BYTES = IGNORED_BODY_BYTES  # {"max_running": N, "max_per_second": R, "burst": B}


def _store(request: Request) -> LimitsStore:
    settings = settings_of(request)
    return LimitsStore(
        redis_of(request), keys_of(request), max_per_queue=settings.max_limits_per_queue
    )


async def list_limits(request: Request) -> Response:
    """Every limit key of the queue with its limits, running slots and held jobs."""
    _query(request.query_params, ())
    name = ids.validate_queue(request.path_params["name"], "name")
    async with redis_deadline(request):
        states = await _store(request).states(name)
    return JSONResponse({"queue": name, "limits": [s.to_json() for s in states]})


async def put_limit(request: Request) -> Response:
    """Set the limits of one key; 201 when it is new, 200 when it replaced one."""
    _query(request.query_params, ())
    name = ids.validate_queue(request.path_params["name"], "name")
    key = validate_limit_key(request.path_params["key"])
    limit = parse_limit(await read_json_object(request, LIMIT_BODY_BYTES))
    store = _store(request)
    try:
        async with redis_deadline(request):
            created = await store.set(name, key, limit)
    except LimitCountReached as exc:
        return problem_response(
            409,
            "limit-count",
            "Conflict",
            f"the queue has {exc.limit} limit keys already (CONVEYOR_MAX_LIMITS_PER_QUEUE); "
            "nothing was written",
            extra={"max_limits_per_queue": exc.limit},
        )
    return JSONResponse(
        {"queue": name, "key": key, **limit.to_json()}, status_code=201 if created else 200
    )


async def delete_limit(request: Request) -> Response:
    """Remove the limits of one key; its held jobs start. 404 when it had none."""
    await check_ignored_body(request)
    _query(request.query_params, ())
    name = ids.validate_queue(request.path_params["name"], "name")
    key = validate_limit_key(request.path_params["key"])
    async with redis_deadline(request):
        removed = await _store(request).delete(name, key)
    if not removed:
        return problem_response(
            404, "limit-not-found", "Not Found", "the queue has no limit for this key"
        )
    return Response(status_code=204)


async def one_limit(request: Request) -> Response:
    """PUT or DELETE: one route, so a 405 names both methods in its Allow header."""
    if request.method == "PUT":
        return await put_limit(request)
    return await delete_limit(request)


routes = [
    Route("/queues/{name}/limits", list_limits, methods=["GET"]),
    Route("/queues/{name}/limits/{key}", one_limit, methods=["PUT", "DELETE"]),
]
