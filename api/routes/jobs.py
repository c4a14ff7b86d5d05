"""`/jobs`: create, read, list and cancel jobs."""

from __future__ import annotations

import logging
import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.body import body_limit, read_json_object
from api.deps import correlation_id_of, redis_deadline, settings_of, store_of
from api.dto import parse_list_query, parse_new_job
from api.problems import job_not_found_response
from shared.ids import JOB_ID_PATTERN
from shared.store.producer import CancelOutcome

_JOB_ID = re.compile(JOB_ID_PATTERN)
log = logging.getLogger("conveyor.api")


def _job_id(request: Request) -> str | None:
    """The path's job id, or None when it cannot be one: such an id never reaches Redis."""
    value = request.path_params["job_id"]
    return value if isinstance(value, str) and _JOB_ID.fullmatch(value) else None


async def create_job(request: Request) -> Response:
    settings = settings_of(request)
    body = await read_json_object(request, body_limit(settings.max_payload_bytes))
    new = parse_new_job(
        body,
        max_payload_bytes=settings.max_payload_bytes,
        correlation_id=correlation_id_of(request),
    )
    async with redis_deadline(request):
        [job] = await store_of(request).enqueue([new])
    log.info(
        "job created",
        extra={"job_id": job.id, "queue": job.queue, "type": job.type, "status": job.status},
    )
    return JSONResponse(job.to_json(), status_code=201, headers={"Location": f"/jobs/{job.id}"})


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


async def list_jobs(request: Request) -> Response:
    """Jobs newest first; pass `next_cursor` back as `cursor` for the next page."""
    query = parse_list_query(request.query_params)
    async with redis_deadline(request):
        page = await store_of(request).list_jobs(query)
    return JSONResponse(
        {"items": [job.to_json() for job in page.items], "next_cursor": page.next_cursor}
    )


async def _collection(request: Request) -> Response:
    return await (create_job if request.method == "POST" else list_jobs)(request)


async def _item(request: Request) -> Response:
    return await (cancel_job if request.method == "DELETE" else get_job)(request)


# One route per path, so a 405 lists every allowed method in its Allow header.
routes = [
    Route("/jobs", _collection, methods=["GET", "POST"]),
    Route("/jobs/{job_id}", _item, methods=["GET", "DELETE"]),
]
