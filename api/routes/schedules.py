"""`/schedules`: create or replace, read, list and delete periodic schedules.

The schedules are fired by the scheduler processes (worker/periodic.py); these routes only
define them. Their number is capped (``max_schedules``), so a listing is one bounded read.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conveyor.api.body import body_limit, check_ignored_body, read_json_object
from conveyor.api.deps import keys_of, payload_types_of, redis_deadline, redis_of, settings_of
from conveyor.api.payload_check import payload_problems
from conveyor.api.problems import InvalidFields, problem_response
from conveyor.errors import ValidationError
from conveyor.schedules import (
    ScheduleLimitReached,
    ScheduleNotFound,
    parse_schedule,
    validate_schedule_name,
)
from conveyor.store.schedules import ScheduleStore

log = logging.getLogger("conveyor.api")


def schedule_not_found(name: str | None) -> Response:
    detail = f"no schedule is named {name}" if name else "no schedule has this name"
    return problem_response(404, "schedule-not-found", "Not Found", detail)


def _store(request: Request) -> ScheduleStore:
    return ScheduleStore(
        redis_of(request), keys_of(request), max_schedules=settings_of(request).max_schedules
    )


def _name(request: Request) -> str | None:
    """The path's schedule name, or None when it cannot be one (it never reaches Redis)."""
    try:
        return validate_schedule_name(request.path_params["name"])
    except ValidationError:
        return None


async def put_schedule(request: Request) -> Response:
    """201 with a new schedule, 200 with a replaced one; 422 naming every bad field, 409
    when it is new and ``max_schedules`` exist. Nothing is written on a refusal."""
    settings = settings_of(request)
    body = await read_json_object(request, body_limit(settings.max_payload_bytes))
    raw_name = request.path_params["name"]
    errors = payload_problems(
        payload_types_of(request), body.get("type"), body.get("payload"), "payload"
    )
    spec, invalid, too_large = parse_schedule(
        raw_name, body, max_payload_bytes=settings.max_payload_bytes
    )
    if invalid or errors:
        raise InvalidFields([*invalid, *errors])
    if too_large is not None:
        raise too_large
    assert spec is not None
    try:
        async with redis_deadline(request):
            stored, created = await _store(request).put(spec)
    except ScheduleLimitReached as exc:
        return problem_response(409, "schedule-limit", "Conflict", str(exc))
    log.info("schedule stored", extra={"schedule": spec.name, "new": created})
    headers = {"Location": f"/schedules/{spec.name}"} if created else None
    return JSONResponse(stored.to_json(), status_code=201 if created else 200, headers=headers)


async def list_schedules(request: Request) -> Response:
    """Every schedule, by name (at most ``max_schedules``)."""
    if request.query_params:
        name = next(iter(request.query_params.keys()))
        raise InvalidFields([ValidationError(name, "is not a known query parameter")])
    async with redis_deadline(request):
        items = await _store(request).all()
    return JSONResponse({"items": [s.to_json() for s in items], "total": len(items)})


async def get_schedule(request: Request) -> Response:
    name = _name(request)
    if name is None:
        return schedule_not_found(None)
    try:
        async with redis_deadline(request):
            stored = await _store(request).get(name)
    except ScheduleNotFound:
        return schedule_not_found(name)
    return JSONResponse(stored.to_json())


async def delete_schedule(request: Request) -> Response:
    """204; the jobs the schedule created stay. 404 when there is none."""
    await check_ignored_body(request)
    name = _name(request)
    if name is None:
        return schedule_not_found(None)
    try:
        async with redis_deadline(request):
            await _store(request).delete(name)
    except ScheduleNotFound:
        return schedule_not_found(name)
    log.info("schedule deleted", extra={"schedule": name})
    return Response(status_code=204)


_BY_METHOD = {"GET": get_schedule, "PUT": put_schedule, "DELETE": delete_schedule}


async def _item(request: Request) -> Response:
    return await _BY_METHOD[request.method](request)


routes = [
    Route("/schedules", list_schedules, methods=["GET"]),
    Route("/schedules/{name}", _item, methods=["GET", "PUT", "DELETE"]),
]
