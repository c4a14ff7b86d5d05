"""The HTTP API application: `create_app(settings)` builds it, uvicorn serves it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute

from conveyor.api.auth import AuthMiddleware, Tokens, load_tokens
from conveyor.api.coalesce import CreateCoalescer
from conveyor.api.content_type import JsonContentTypeMiddleware
from conveyor.api.deps import DEADLINE_SLACK_SECONDS
from conveyor.api.middleware import (
    CorrelationIdMiddleware,
    HttpMetricsMiddleware,
    SecurityHeadersMiddleware,
)
from conveyor.api.payload_check import load_payload_types
from conveyor.api.problems import exception_handlers
from conveyor.api.routes import (
    docs,
    health,
    jobs,
    limits,
    metrics,
    queue_actions,
    queues,
    schedules,
    ui,
    workers,
)
from conveyor.api.trusted_hosts import TrustedHostMiddleware
from conveyor.config import Settings
from conveyor.metrics import ApiMetrics, QueueCollector, process_registry
from conveyor.redis_conn import connect
from conveyor.redis_multiplex import connect_multiplexed
from conveyor.store.inspect import queue_snapshot
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.store.stats_cache import StatsCache
from conveyor.values import Created, NewJob

log = logging.getLogger("conveyor.api")

OPEN_WARNING = (
    "api_auth is none: the API is open to anyone who reaches it, no token is checked; "
    "use it only on a local machine (set tokens and api_auth token in production)"
)
CORS_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE")
CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Correlation-ID",
    "X-Request-ID",
)
CORS_EXPOSED_HEADERS = ("X-Correlation-ID", "Location")
CORS_MAX_AGE_SECONDS = 600


class CountingProducerStore(ProducerStore):
    """The producer store of the API: counts the jobs it creates (both create routes go
    through `create`; idempotent repeats create nothing and are not counted)."""

    def __init__(self, *args: Any, metrics: ApiMetrics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = metrics

    async def create(self, jobs: Sequence[NewJob]) -> list[Created]:
        results = await super().create(jobs)
        for result in results:
            if result.created:
                self.metrics.job_created(result.job.queue, result.job.type)
        return results


def create_app(settings: Settings, *, redis: Redis | None = None) -> Starlette:
    """The API for `settings`. Its lifespan opens the Redis client (unless `redis` is
    given, which then stays open: its owner closes it) and the producer store, kept on
    ``app.state``; shutting down closes the client it opened.

    The tokens file is read here, once, and the `api_handlers` modules are imported (their
    typed payloads are validated on job creation): `ConfigError` when either cannot be used,
    and when ``api_auth`` is ``token`` with no token configured. With ``api_auth = "none"``
    a warning that the API is open is logged when it starts.

    Each app has its own metrics registry (``app.state.metrics``): HTTP metrics, jobs
    created, and the queue gauges, read when `/metrics` is scraped from the queue
    statistics cache (``app.state.queue_stats``) that `GET /queues` shares.
    """
    keys = Keys(settings.key_prefix)
    api_metrics = ApiMetrics(
        process_registry(),
        max_types=settings.metrics_max_types,
        max_queues=settings.max_queues,
    )
    tokens = load_tokens(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not tokens.enabled:
            log.warning(OPEN_WARNING)
        client = connect(settings) if redis is None else redis
        # The enqueue round trip over a multiplexed connection where the URL allows (ADR 9).
        hot = connect_multiplexed(settings) if redis is None else None
        app.state.redis = client
        app.state.store = CountingProducerStore(
            client,
            keys,
            result_ttl_seconds=settings.result_ttl_seconds,
            idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
            wait_replicas=settings.redis_wait_replicas,
            wait_timeout_ms=int(settings.redis_wait_timeout_seconds * 1000),
            max_queues=settings.max_queues,
            metrics=api_metrics,
            hot_redis=hot,
        )
        app.state.coalescer = CreateCoalescer(app.state.store)
        stats = StatsCache(
            lambda: queue_snapshot(client, keys, settings.max_queues),
            ttl=settings.stats_cache_seconds,
            timeout=settings.redis_timeout_seconds + DEADLINE_SLACK_SECONDS,
        )
        app.state.queue_stats = stats
        collector = QueueCollector(stats)
        api_metrics.registry.register(collector)
        app.state.queue_collector = collector
        try:
            yield
        finally:
            api_metrics.registry.unregister(collector)
            app.state.queue_collector = None
            await stats.close()
            if hot is not None:
                await hot.aclose()
            if redis is None:
                await client.aclose()

    routes: list[BaseRoute] = [
        *health.routes,
        *metrics.routes,
        *jobs.routes,
        *queues.routes,
        *queue_actions.routes,
        *limits.routes,
        *schedules.routes,
        *workers.routes,
        *docs.routes,
        *ui.routes,
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware(settings, api_metrics, routes, tokens),
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # /jobs/ is not /jobs: a 404, never a redirect
    app.state.settings = settings
    app.state.bearer_auth = tokens.enabled  # what /openapi.json declares
    app.state.keys = keys
    app.state.metrics = api_metrics
    app.state.payload_types = load_payload_types(settings)
    return app


def middleware(
    settings: Settings, api_metrics: ApiMetrics, routes: Sequence[BaseRoute], tokens: Tokens
) -> list[Middleware]:
    """Outermost first: the HTTP metrics count every request (what the other layers answer
    included); security headers and the correlation id go on every response (401s and
    CORS preflights included); the Host check (when trusted hosts are set) refuses
    rebound names first; CORS answers preflights before authentication, which browsers
    send without credentials; a state-changing request that is not JSON is refused (415)
    before authentication and before any route reads or changes anything; authentication
    guards the routes."""
    stack = [
        Middleware(HttpMetricsMiddleware, metrics=api_metrics, routes=routes),
        Middleware(SecurityHeadersMiddleware),
        Middleware(CorrelationIdMiddleware),
    ]
    if settings.trusted_hosts:
        stack.append(Middleware(TrustedHostMiddleware, hosts=settings.trusted_hosts))
    if settings.cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=list(CORS_METHODS),
                allow_headers=list(CORS_REQUEST_HEADERS),
                expose_headers=list(CORS_EXPOSED_HEADERS),
                max_age=CORS_MAX_AGE_SECONDS,
            )
        )
    stack.append(Middleware(JsonContentTypeMiddleware, routes=routes))
    stack.append(
        Middleware(AuthMiddleware, tokens=tokens, metrics_open=settings.metrics_auth != "token")
    )
    return stack
