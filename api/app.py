"""The HTTP API application: `create_app(settings)` builds it, uvicorn serves it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware

from api.middleware import CorrelationIdMiddleware
from api.problems import exception_handlers
from api.routes import docs, health, jobs
from shared.config import Settings
from shared.redis_conn import connect
from shared.store.keys import Keys
from shared.store.producer import ProducerStore


def create_app(settings: Settings, *, redis: Redis | None = None) -> Starlette:
    """The API for `settings`. Its lifespan opens the Redis client (unless `redis` is
    given, which then stays open: its owner closes it) and the producer store, kept on
    ``app.state``; shutting down closes the client it opened."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = connect(settings) if redis is None else redis
        app.state.redis = client
        app.state.store = ProducerStore(
            client, Keys(settings.key_prefix), result_ttl_seconds=settings.result_ttl_seconds
        )
        try:
            yield
        finally:
            if redis is None:
                await client.aclose()

    app = Starlette(
        routes=[*health.routes, *jobs.routes, *docs.routes],
        middleware=[Middleware(CorrelationIdMiddleware)],
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # /jobs/ is not /jobs: a 404, never a redirect
    app.state.settings = settings
    return app
