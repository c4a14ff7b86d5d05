"""`/metrics`: the API process's metrics and the queue gauges, in the Prometheus format."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conveyor.metrics import CONTENT_TYPE_LATEST, QueueCollector, render


async def metrics(request: Request) -> Response:
    """No token needed (like the probes) unless metrics_auth is token (then a read or full
    token, checked by `api.auth`). The queue gauges are read from Redis now; when Redis
    cannot be read they are left out and the rest is still served with a 200."""
    collector: QueueCollector | None = getattr(request.app.state, "queue_collector", None)
    if collector is not None:
        await collector.refresh()
    registry: CollectorRegistry = request.app.state.metrics.registry
    return Response(render(registry), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics, methods=["GET"])]
