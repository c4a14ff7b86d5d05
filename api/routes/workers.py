"""`/workers`: the workers whose heartbeats are current, and resizing them while they run
(`PUT /workers/{id}/concurrency`, `PUT /queues/{name}/concurrency`: ADR 16)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conveyor import jobspec
from conveyor.api.body import read_json_object
from conveyor.api.deps import keys_of, redis_deadline, redis_of, settings_of
from conveyor.api.problems import InvalidFields, problem_response
from conveyor.api.routes.queue_actions import _known_queue
from conveyor.api.routes.queues import queue_not_found
from conveyor.errors import ValidationError
from conveyor.store.concurrency import ConcurrencyStore
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


RESIZE_BODY_BYTES = 1024


def worker_not_found(worker_id: str | None) -> Response:
    detail = f"no live worker is named {worker_id}" if worker_id else "no live worker has this id"
    return problem_response(404, "worker-not-found", "Not Found", detail)


async def _asked_concurrency(request: Request) -> int | None:
    """The body ``{"concurrency": n}`` (1..max_concurrency; null clears): 422 naming
    the field otherwise."""
    body: dict[str, Any] = await read_json_object(request, RESIZE_BODY_BYTES)
    maximum = settings_of(request).max_concurrency
    errors = [ValidationError(n, "is not a known field") for n in body if n != "concurrency"]
    if "concurrency" not in body:
        errors.append(ValidationError("concurrency", "is required (null clears it)"))
    value = body.get("concurrency")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 8.0 is an integer in JSON (and JSON Schema)
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum
    ):
        errors.append(
            ValidationError("concurrency", f"must be an integer from 1 to {maximum}, or null")
        )
    if errors:
        raise InvalidFields(errors)
    return value


async def resize_worker(request: Request) -> Response:
    """Ask one live worker to run `concurrency` jobs at once (null: back to its queue's or
    its own); it applies it within a second."""
    raw = request.path_params["worker_id"]
    worker_id = raw if isinstance(raw, str) and jobspec.WORKER_ID.fullmatch(raw) else None
    concurrency = await _asked_concurrency(request)
    if worker_id is None:
        return worker_not_found(None)
    async with redis_deadline(request):
        store = ConcurrencyStore(redis_of(request), keys_of(request))
        if not await store.set_worker(worker_id, concurrency):
            return worker_not_found(worker_id)
    return JSONResponse({"worker": worker_id, "concurrency": concurrency})


async def resize_queue(request: Request) -> Response:
    """Ask every worker of the queue to run `concurrency` jobs at once (null clears it);
    a worker's own value wins over its queue's."""
    concurrency = await _asked_concurrency(request)
    async with redis_deadline(request):
        name = await _known_queue(request)
        if name is None:
            return queue_not_found(None)
        await ConcurrencyStore(redis_of(request), keys_of(request)).set_queue(name, concurrency)
    return JSONResponse({"queue": name, "concurrency": concurrency})


routes = [
    Route("/workers", list_workers, methods=["GET"]),
    Route("/workers/{worker_id}/concurrency", resize_worker, methods=["PUT"]),
    Route("/queues/{name}/concurrency", resize_queue, methods=["PUT"]),
]
