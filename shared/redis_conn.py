"""Redis clients built from `Settings`, with every timeout explicit.

redis-py's defaults (no socket timeout on some paths, three retries with backoff) would let
one call against a dead Redis hang or take many seconds; the API's deadline and the worker's
lease both assume a call fails after about ``redis_timeout_seconds``. So: one retry, after a
short jittered backoff, only on connection errors and timeouts.

A blocking read (``XREADGROUP BLOCK``) legitimately waits; its client gets a socket timeout
of the block time plus the usual timeout, so the wait is never mistaken for a dead server.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.config import Settings
from shared.config_values import mask_url

CLIENT_NAME = "conveyor"
HEALTH_CHECK_INTERVAL = 30
RETRIES = 1
_RETRY_ON = (RedisConnectionError, RedisTimeoutError)
# Backoff before the one retry: jittered, at most 0.25 s, so a blip costs little.
_BACKOFF_BASE = 0.05
_BACKOFF_CAP = 0.25


def _options(settings: Settings, blocking_read_seconds: float) -> dict[str, Any]:
    if blocking_read_seconds < 0:
        raise ValueError("blocking_read_seconds must be >= 0")
    return {
        "socket_timeout": settings.redis_timeout_seconds + blocking_read_seconds,
        "socket_connect_timeout": settings.redis_timeout_seconds,
        "decode_responses": False,
        "health_check_interval": HEALTH_CHECK_INTERVAL,
        "client_name": CLIENT_NAME,
    }


def _backoff() -> ExponentialWithJitterBackoff:
    return ExponentialWithJitterBackoff(cap=_BACKOFF_CAP, base=_BACKOFF_BASE)


def connect(settings: Settings, *, blocking_read_seconds: float = 0.0) -> redis.asyncio.Redis:
    """An asyncio client for ``settings.redis_url``; it connects on first use.

    Give `blocking_read_seconds` for a client that runs ``BLOCK`` reads of that length.
    """
    retry = redis.asyncio.retry.Retry(_backoff(), RETRIES, supported_errors=_RETRY_ON)
    return redis.asyncio.Redis.from_url(
        settings.redis_url, retry=retry, **_options(settings, blocking_read_seconds)
    )


def connect_sync(settings: Settings, *, blocking_read_seconds: float = 0.0) -> redis.Redis:
    """The same client, synchronous: for CLI commands and scripts."""
    retry = redis.retry.Retry(_backoff(), RETRIES, supported_errors=_RETRY_ON)
    return redis.Redis.from_url(
        settings.redis_url, retry=retry, **_options(settings, blocking_read_seconds)
    )


def describe_url(url: str) -> str:
    """The URL as it may be printed or logged: password masked."""
    return mask_url(url)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _config_value(reply: object, name: str) -> str | None:
    if not isinstance(reply, dict):
        return None
    for key, value in reply.items():
        if _text(key).lower() == name:
            return _text(value)
    return None


async def check_redis(r: redis.asyncio.Redis) -> list[str]:
    """Warnings about server settings that can lose jobs; empty when all is well.

    Managed Redis services often refuse CONFIG GET; that is a warning too, since the
    settings could not be verified. Connection errors propagate.
    """
    try:
        policy = _config_value(await r.config_get("maxmemory-policy"), "maxmemory-policy")
        appendonly = _config_value(await r.config_get("appendonly"), "appendonly")
    except ResponseError as exc:
        return [
            "could not check maxmemory-policy and appendonly (CONFIG GET was refused: "
            f"{exc}); make sure Redis uses noeviction and persistence"
        ]
    warnings: list[str] = []
    if policy is None:
        warnings.append("could not check maxmemory-policy: CONFIG GET did not return it")
    elif policy != "noeviction":
        warnings.append(
            f"maxmemory-policy is {policy}; Conveyor needs noeviction or jobs can be evicted"
        )
    if appendonly is None:
        warnings.append("could not check appendonly: CONFIG GET did not return it")
    elif appendonly != "yes":
        warnings.append("appendonly is off: a Redis restart loses jobs")
    return warnings
