"""`/queues`: how much work each queue holds, and in which state.

`GET /queues` answers from the process's statistics cache (`StatsCache`: read at most once
per ``stats_cache_seconds`` and shared with `/metrics`), a page of at most `MAX_LIMIT`
queues by name; the cache itself holds at most ``max_queues`` queues (the first by name).
So one request costs at most one shared, bounded read and a bounded response however many
queues there are. `GET /queues/{name}` reads its one queue from Redis (a constant number of
commands), fresh.
"""

from __future__ import annotations

import bisect
import re

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conveyor.api.deps import keys_of, queue_stats_of, redis_deadline, redis_of
from conveyor.api.problems import InvalidFields, problem_response
from conveyor.errors import ValidationError
from conveyor.ids import validate_queue
from conveyor.store.inspect import queue_stats

MAX_LIMIT = 1000  # queues in one page, and the default page size
QUERY_FIELDS = ("limit", "cursor")
_DIGITS = re.compile(r"[0-9]{1,6}", re.ASCII)


def queue_not_found(name: str | None) -> Response:
    detail = f"no queue is named {name}" if name else "no queue has this name"
    return problem_response(404, "queue-not-found", "Not Found", detail)


def parse_page(params: QueryParams) -> tuple[int, str | None]:
    """`limit` (1..MAX_LIMIT, default MAX_LIMIT) and `cursor` (the name after which the
    page starts: the `next_cursor` of the previous page); 400 naming each bad field."""
    errors: list[ValidationError] = []
    for name in dict.fromkeys(params.keys()):
        if name not in QUERY_FIELDS:
            errors.append(ValidationError(name, "is not a known query parameter"))
        elif len(params.getlist(name)) > 1:
            errors.append(ValidationError(name, "may be given only once"))
    limit, cursor = MAX_LIMIT, None
    raw_limit = params.get("limit")
    if raw_limit is not None:
        if _DIGITS.fullmatch(raw_limit) and 1 <= int(raw_limit) <= MAX_LIMIT:
            limit = int(raw_limit)
        else:
            errors.append(ValidationError("limit", f"must be an integer between 1 and {MAX_LIMIT}"))
    raw_cursor = params.get("cursor")
    if raw_cursor is not None:
        try:
            cursor = validate_queue(raw_cursor, "cursor")
        except ValidationError as exc:
            errors.append(exc)
    if errors:
        raise InvalidFields(errors)
    return limit, cursor


async def list_queues(request: Request) -> Response:
    """A page of the known queues, by name, from the statistics cache."""
    limit, cursor = parse_page(request.query_params)
    async with redis_deadline(request):
        snapshot = await queue_stats_of(request).get()
    items = snapshot.items
    start = 0 if cursor is None else bisect.bisect_right([s.name for s in items], cursor)
    page = items[start : start + limit]
    more = start + limit < len(items)
    return JSONResponse(
        {
            "items": [s.to_json() for s in page],
            "next_cursor": page[-1].name if more else None,
            "total": snapshot.total,
        }
    )


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
