"""The HTTP API application: `create_app(settings)` builds it, uvicorn serves it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from api.auth import AuthMiddleware, load_tokens
from api.middleware import CorrelationIdMiddleware, SecurityHeadersMiddleware
from api.problems import exception_handlers
from api.routes import docs, health, jobs, queues, workers
from shared.config import Settings
from shared.redis_conn import connect
from shared.store.keys import Keys
from shared.store.producer import ProducerStore

CORS_METHODS = ("GET", "HEAD", "POST", "DELETE")
CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Correlation-ID",
    "X-Request-ID",
)
CORS_EXPOSED_HEADERS = ("X-Correlation-ID", "Location")
CORS_MAX_AGE_SECONDS = 600


def create_app(settings: Settings, *, redis: Redis | None = None) -> Starlette:
    """The API for `settings`. Its lifespan opens the Redis client (unless `redis` is
    given, which then stays open: its owner closes it) and the producer store, kept on
    ``app.state``; shutting down closes the client it opened.

    The tokens file is read here, once: `ConfigError` when it cannot be used.
    """
    keys = Keys(settings.key_prefix)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = connect(settings) if redis is None else redis
        app.state.redis = client
        app.state.store = ProducerStore(
            client,
            keys,
            result_ttl_seconds=settings.result_ttl_seconds,
            idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
        )
        try:
            yield
        finally:
            if redis is None:
                await client.aclose()

    app = Starlette(
        routes=[
            *health.routes,
            *jobs.routes,
            *queues.routes,
            *workers.routes,
            *docs.routes,
        ],
        middleware=middleware(settings),
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # /jobs/ is not /jobs: a 404, never a redirect
    app.state.settings = settings
    app.state.keys = keys
    return app


def middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: security headers and the correlation id go on every response
    (401s and CORS preflights included); CORS answers preflights before authentication,
    which browsers send without credentials; authentication guards the routes."""
    stack = [Middleware(SecurityHeadersMiddleware), Middleware(CorrelationIdMiddleware)]
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
    stack.append(Middleware(AuthMiddleware, tokens=load_tokens(settings)))
    return stack
