"""`/jobs`: create (one or a batch, idempotently), read, list, cancel and replay jobs
(``POST /jobs/{id}/retry``)."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conveyor.api.body import (
    batch_body_limit,
    batch_value_limit,
    body_limit,
    check_ignored_body,
    off_loop_if_large,
    parse_object,
    read_json_body,
    read_json_object,
)
from conveyor.api.deps import (
    coalescer_of,
    correlation_id_of,
    payload_types_of,
    redis_deadline,
    settings_of,
    store_of,
)
from conveyor.api.dto import (
    parse_batch,
    parse_idempotency_header,
    parse_list_query,
    parse_new_job,
    with_idempotency_key,
)
from conveyor.api.payload_check import PayloadTypes, payload_problems
from conveyor.api.problems import (
    InvalidFields,
    idempotency_conflict_response,
    job_not_found_response,
)
from conveyor.config import Settings
from conveyor.errors import IdempotencyConflict, PayloadTooLarge, ValidationError
from conveyor.ids import JOB_ID_PATTERN
from conveyor.job import BULKY_FIELDS
from conveyor.values import CancelOutcome, NewJob

_JOB_ID = re.compile(JOB_ID_PATTERN)
log = logging.getLogger("conveyor.api")


def _job_id(request: Request) -> str | None:
    """The path's job id, or None when it cannot be one: such an id never reaches Redis."""
    value = request.path_params["job_id"]
    return value if isinstance(value, str) and _JOB_ID.fullmatch(value) else None


async def create_job(request: Request) -> Response:
    """201 with the new job; 200 with the original job when the `Idempotency-Key` was used
    before for the same request, or with the holder when the `unique_key` is held (nothing
    is created then); 409 when the `Idempotency-Key` was used for another request."""
    settings = settings_of(request)
    body = await read_json_object(request, body_limit(settings.max_payload_bytes))
    new = _new_job(request, body)
    async with redis_deadline(request):
        result = await coalescer_of(request).create(new)
    job = result.job
    if not result.created:
        log.info("idempotent repeat", extra={"job_id": job.id, "queue": job.queue})
        return JSONResponse(job.to_json(), status_code=200)
    log.info(
        "job created",
        extra={"job_id": job.id, "queue": job.queue, "type": job.type, "status": job.status},
    )
    return JSONResponse(job.to_json(), status_code=201, headers={"Location": f"/jobs/{job.id}"})


def _new_job(request: Request, body: dict[str, object]) -> NewJob:
    """The job of a `POST /jobs` body and its `Idempotency-Key`: every invalid input of
    both, and of a typed payload, is reported at once."""
    errors = payload_problems(
        payload_types_of(request), body.get("type"), body.get("payload"), "payload"
    )
    try:
        key = parse_idempotency_header(request.headers)
    except ValidationError as exc:
        errors.append(exc)
        key = None
    try:
        new = parse_new_job(
            body,
            max_payload_bytes=settings_of(request).max_payload_bytes,
            correlation_id=correlation_id_of(request),
        )
    except InvalidFields as exc:
        raise InvalidFields(exc.errors + errors) from None
    except PayloadTooLarge:
        if errors:
            raise InvalidFields(errors) from None
        raise
    if errors:
        raise InvalidFields(errors)
    return with_idempotency_key(new, key, body)


async def create_batch(request: Request) -> Response:
    """All or nothing: 201 with every job in request order (200 when every item was an
    idempotent repeat); one invalid item refuses the whole batch with nothing written."""
    settings = settings_of(request)
    data = await read_json_body(request, batch_body_limit(settings.max_payload_bytes))
    body = await parse_object(
        data, max_values=batch_value_limit(settings.max_batch_jobs), values_field="jobs"
    )
    # Checking and encoding a large batch's payloads takes as long as parsing it: off the loop.
    jobs = await off_loop_if_large(
        len(data),
        _valid_batch,
        body,
        settings,
        payload_types_of(request),
        correlation_id_of(request),
    )
    try:
        async with redis_deadline(request):
            results = await store_of(request).create(jobs)
    except IdempotencyConflict as exc:
        fields = [
            f"jobs/{i}/idempotency_key" for i, j in enumerate(jobs) if j.idempotency_key == exc.key
        ]
        return idempotency_conflict_response(exc, fields)
    created = sum(r.created for r in results)
    log.info("batch created", extra={"jobs": len(results), "new_jobs": created})
    return JSONResponse(
        {"jobs": [r.job.to_json() for r in results]}, status_code=201 if created else 200
    )


def _valid_batch(
    body: dict[str, object], settings: Settings, types: PayloadTypes, correlation: str | None
) -> list[NewJob]:
    """The jobs of a batch body, or `InvalidFields` naming every bad item or field."""
    jobs = parse_batch(
        body,
        max_jobs=settings.max_batch_jobs,
        max_payload_bytes=settings.max_payload_bytes,
        correlation_id=correlation,
    )
    _check_batch_payloads(types, body)
    return jobs


def _check_batch_payloads(types: PayloadTypes, body: dict[str, object]) -> None:
    """`InvalidFields` naming every field of every typed payload of a (parsed, so
    well-formed) batch body that does not fit its handler's type."""
    items = body["jobs"]
    assert isinstance(items, list)
    problems = [
        error
        for index, item in enumerate(items)
        for error in payload_problems(
            types, item.get("type"), item.get("payload"), f"jobs/{index}/payload"
        )
    ]
    if problems:
        raise InvalidFields(problems)


async def get_job(request: Request) -> Response:
    job_id = _job_id(request)
    if job_id is None:
        return job_not_found_response(None)
    async with redis_deadline(request):
        job = await store_of(request).get(job_id)
    return JSONResponse(job.to_json())


async def cancel_job(request: Request) -> Response:
    """200 with the job when it was canceled at once; 202 when it is running and its
    worker was asked to stop (the job shows cancel_requested until it does)."""
    await check_ignored_body(request)
    job_id = _job_id(request)
    if job_id is None:
        return job_not_found_response(None)
    async with redis_deadline(request):
        outcome, job = await store_of(request).cancel(job_id)
    log.info(
        "job canceled" if outcome is CancelOutcome.CANCELED else "job cancel requested",
        extra={"job_id": job.id, "queue": job.queue, "type": job.type},
    )
    status = 200 if outcome is CancelOutcome.CANCELED else 202
    return JSONResponse(job.to_json(), status_code=status)


async def replay_job(request: Request) -> Response:
    """A failed or canceled job runs again: 200 with it, now pending; 409 from any other
    status."""
    await check_ignored_body(request)
    job_id = _job_id(request)
    if job_id is None:
        return job_not_found_response(None)
    async with redis_deadline(request):
        job = await store_of(request).replay(job_id)
    log.info("job replayed", extra={"job_id": job.id, "queue": job.queue, "type": job.type})
    return JSONResponse(job.to_json())


async def list_jobs(request: Request) -> Response:
    """Jobs newest first; pass `next_cursor` back as `cursor` for the next page.

    Items carry payload and result only when `include` asks for them, and the page takes
    at most ``max_list_bytes``: the store stops reading at its estimate of that, and the
    encoded items are checked here, so a page of large jobs ends early (at least one job),
    with a cursor to the rest, instead of growing with the jobs' sizes."""
    limit = settings_of(request).max_list_bytes
    query = replace(parse_list_query(request.query_params), max_bytes=limit)
    async with redis_deadline(request):
        page = await store_of(request).list_jobs(query)
    omit = BULKY_FIELDS - query.include
    parts: list[bytes] = []
    size = 0
    cursor = page.next_cursor
    for job in page.items:
        part = _encode(job.to_json(omit))
        if parts and size + len(part) > limit:
            cursor = page.items[len(parts) - 1].id
            break
        parts.append(part)
        size += len(part) + 1
    tail = _encode(cursor)
    body = b'{"items":[' + b",".join(parts) + b'],"next_cursor":' + tail + b"}"
    return Response(body, media_type="application/json")


def _encode(value: object) -> bytes:
    """JSON as Starlette's JSONResponse writes it."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


async def _collection(request: Request) -> Response:
    return await (create_job if request.method == "POST" else list_jobs)(request)


async def _item(request: Request) -> Response:
    if request.path_params["job_id"] == "batch":
        # Other methods on /jobs/batch land here: it is a route, not a job id.
        raise HTTPException(405, headers={"Allow": "POST"})
    return await (cancel_job if request.method == "DELETE" else get_job)(request)


# One route per path, so a 405 lists every allowed method in its Allow header. The batch
# route comes before `/jobs/{job_id}`, which would otherwise take its path.
routes = [
    Route("/jobs", _collection, methods=["GET", "POST"]),
    Route("/jobs/batch", create_batch, methods=["POST"]),
    Route("/jobs/{job_id}", _item, methods=["GET", "DELETE"]),
    Route("/jobs/{job_id}/retry", replay_job, methods=["POST"]),
]
