"""Probes: `/healthz` (the process answers) and `/readyz` (and so does Redis)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.deps import redis_deadline, redis_of


async def healthz(request: Request) -> Response:
    """Liveness: never touches Redis, so a Redis outage does not get the API restarted."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: Redis answers PING within the deadline, else 503 problem+json."""
    async with redis_deadline(request):
        await redis_of(request).ping()
    return JSONResponse({"status": "ready"})


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
