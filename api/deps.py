"""What a request handler needs from the application: settings, the store, the deadline."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from starlette.requests import Request

from conveyor.api.coalesce import CreateCoalescer
from conveyor.api.payload_check import PayloadTypes
from conveyor.config import Settings
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.store.stats_cache import StatsCache

DEADLINE_SLACK_SECONDS = 0.5  # on top of the Redis socket timeout: retries included


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def store_of(request: Request) -> ProducerStore:
    store: ProducerStore = request.app.state.store
    return store


def coalescer_of(request: Request) -> CreateCoalescer:
    """Where a single `POST /jobs` creates its job (see `api.coalesce`)."""
    coalescer: CreateCoalescer = request.app.state.coalescer
    return coalescer


def redis_of(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


def redis_deadline(request: Request) -> asyncio.Timeout:
    """An overall bound on the Redis work of one request, reconnects and retries included:
    when it passes, the work is cancelled and `TimeoutError` becomes a 503."""
    return asyncio.timeout(settings_of(request).redis_timeout_seconds + DEADLINE_SLACK_SECONDS)


def correlation_id_of(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("correlation_id")
    return value if isinstance(value, str) else None


def keys_of(request: Request) -> Keys:
    keys: Keys = request.app.state.keys
    return keys


def payload_types_of(request: Request) -> PayloadTypes:
    """The payload types of the typed handlers the API knows, by job type."""
    types: PayloadTypes = request.app.state.payload_types
    return types


def queue_stats_of(request: Request) -> StatsCache:
    """The process's queue statistics, read at most once per ``stats_cache_seconds``."""
    cache: StatsCache = request.app.state.queue_stats
    return cache
