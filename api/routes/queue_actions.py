"""`/queues/{name}/...`: a queue's throughput, operator actions on its finished jobs, and
pausing and resuming it (no job of a paused queue starts; see store/pause.py).

The actions are bounded: one request replays (``retry-failed``) or purges at most `limit`
jobs and answers how many remain, so it stays inside the request deadline however large
the queue is; a client repeats it while jobs remain (the dashboard does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conveyor import ids
from conveyor.api.body import check_ignored_body
from conveyor.api.deps import keys_of, redis_deadline, redis_of
from conveyor.api.problems import InvalidFields
from conveyor.api.routes.queues import queue_not_found
from conveyor.errors import ValidationError
from conveyor.states import Status
from conveyor.store import bulk
from conveyor.store.pause import set_paused
from conveyor.store.throughput import SLOTS, throughput

DEFAULT_MINUTES = 15
DEFAULT_BULK_LIMIT = 1000
FINISHED = tuple(s.value for s in Status if s.terminal)


async def _known_queue(request: Request) -> str | None:
    """The path's queue name when such a queue exists, else None (an invalid name never
    reaches Redis)."""
    try:
        name = ids.validate_queue(request.path_params["name"], "name")
    except ValidationError:
        return None
    known = await redis_of(request).sismember(keys_of(request).queues, name)
    return name if known else None


def _query(params: QueryParams, allowed: Sequence[str]) -> dict[str, str]:
    """The single-valued query parameters; `InvalidFields` for unknown or repeated ones."""
    errors = []
    for name in dict.fromkeys(params.keys()):
        if name not in allowed:
            errors.append(ValidationError(name, "is not a known query parameter"))
        elif len(params.getlist(name)) > 1:
            errors.append(ValidationError(name, "may be given only once"))
    if errors:
        raise InvalidFields(errors)
    return dict(params.items())


def _bounded_int(name: str, low: int, high: int) -> Callable[[str | None, int], int]:
    def parse(value: str | None, default: int) -> int:
        if value is None:
            return default
        if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
            raise InvalidFields([ValidationError(name, f"must be an integer from {low} to {high}")])
        return int(value)

    return parse


_minutes = _bounded_int("minutes", 1, SLOTS)
_limit = _bounded_int("limit", 1, bulk.MAX_LIMIT)


async def get_throughput(request: Request) -> Response:
    """Jobs completed and failed per minute over the last `minutes`, oldest first."""
    query = _query(request.query_params, ("minutes",))
    minutes = _minutes(query.get("minutes"), DEFAULT_MINUTES)
    async with redis_deadline(request):
        name = await _known_queue(request)
        if name is None:
            return queue_not_found(None)
        counts = await throughput(redis_of(request), keys_of(request), [name], minutes)
    return JSONResponse({"queue": name, "minutes": [m.to_json() for m in counts[name]]})


async def replay_failed(request: Request) -> Response:
    """Run up to `limit` failed jobs of the queue again, oldest first."""
    await check_ignored_body(request)
    query = _query(request.query_params, ("limit",))
    limit = _limit(query.get("limit"), DEFAULT_BULK_LIMIT)
    async with redis_deadline(request):
        name = await _known_queue(request)
        if name is None:
            return queue_not_found(None)
        result = await bulk.replay_failed(redis_of(request), keys_of(request), name, limit)
    return JSONResponse(result.to_json("retried"))


async def purge(request: Request) -> Response:
    """Delete up to `limit` finished jobs of the queue in `status`, oldest first."""
    await check_ignored_body(request)
    query = _query(request.query_params, ("status", "limit"))
    raw_status = query.get("status")
    if raw_status not in FINISHED:
        detail = f"must be one of {', '.join(FINISHED)}"
        raise InvalidFields([ValidationError("status", detail)])
    limit = _limit(query.get("limit"), DEFAULT_BULK_LIMIT)
    async with redis_deadline(request):
        name = await _known_queue(request)
        if name is None:
            return queue_not_found(None)
        result = await bulk.purge(
            redis_of(request), keys_of(request), name, Status(raw_status), limit
        )
    return JSONResponse(result.to_json("purged"))


async def pause(request: Request) -> Response:
    """Pause the queue: 200 with its statistics (``paused`` true); 404 for an unknown one."""
    return await _set_paused(request, True)


async def resume(request: Request) -> Response:
    """Resume the queue: 200 with its statistics (``paused`` false); 404 for an unknown one."""
    return await _set_paused(request, False)


async def _set_paused(request: Request, paused: bool) -> Response:
    await check_ignored_body(request)
    _query(request.query_params, ())
    try:
        name = ids.validate_queue(request.path_params["name"], "name")
    except ValidationError:
        return queue_not_found(None)
    async with redis_deadline(request):
        stats = await set_paused(redis_of(request), keys_of(request), name, paused)
    if stats is None:
        return queue_not_found(None)
    return JSONResponse(stats.to_json())


routes = [
    Route("/queues/{name}/throughput", get_throughput, methods=["GET"]),
    Route("/queues/{name}/retry-failed", replay_failed, methods=["POST"]),
    Route("/queues/{name}/purge", purge, methods=["POST"]),
    Route("/queues/{name}/pause", pause, methods=["POST"]),
    Route("/queues/{name}/resume", resume, methods=["POST"]),
]
