"""Redis clients built from `Settings`, with every timeout explicit, in all three modes.

``CONVEYOR_REDIS_URL`` names one server (``redis://``, ``rediss://``, ``unix://``), a Redis
Cluster (``redis+cluster://``) or a Sentinel-managed primary (``redis+sentinel://``); see
`shared.config_redis`. Every process builds its clients here, so each works in every mode:

- standalone: ``redis.asyncio.Redis.from_url``, as before;
- Sentinel: ``Sentinel(...).master_for(service)``: a plain `Redis` whose pool asks the
  sentinels for the primary on every new connection, so after a failover the next
  connection (made by the one retry below) goes to the promoted replica;
- Cluster: `RedisCluster` over the seed nodes. It offers the command interface of `Redis`
  (routing each command by its key's slot), so it is handed to the stores typed as
  `Redis`; the few places that must act differently ask `is_cluster`.

redis-py's defaults (no socket timeout on some paths, three retries with backoff) would let
one call against a dead Redis hang or take many seconds; the API's deadline and the worker's
lease both assume a call fails after about ``redis_timeout_seconds``. So: one retry, after a
short jittered backoff, only on connection errors and timeouts.

A blocking read (``XREADGROUP BLOCK``) legitimately waits; its client gets a socket timeout
of the block time plus the usual timeout, so the wait is never mistaken for a dead server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.cluster
import redis.retry
import redis.sentinel
from redis.asyncio.client import PubSub
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, ResponseError, SlotNotCoveredError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conveyor.config import Settings
from conveyor.config_redis import Mode, RedisTarget, parse_target
from conveyor.config_values import mask_url
from conveyor.redis_packing import use_hiredis_packing

CLIENT_NAME = "conveyor"
HEALTH_CHECK_INTERVAL = 30
RETRIES = 1
# RuntimeError: under uvloop, a write to a connection the peer reset while it sat idle in
# the pool raises "unable to perform operation on <TCPTransport closed=True>" instead of a
# ConnectionError; redis-py has already dropped the connection, so one retry reconnects.
_RETRY_ON = (RedisConnectionError, RedisTimeoutError, RuntimeError)
# Backoff before the one retry: jittered, at most 0.25 s, so a blip costs little.
_BACKOFF_BASE = 0.05
_BACKOFF_CAP = 0.25


def _options(timeout: float, blocking_read_seconds: float) -> dict[str, Any]:
    if blocking_read_seconds < 0:
        raise ValueError("blocking_read_seconds must be >= 0")
    return {
        "socket_timeout": timeout + blocking_read_seconds,
        "socket_connect_timeout": timeout,
        "decode_responses": False,
        "health_check_interval": HEALTH_CHECK_INTERVAL,
        "client_name": CLIENT_NAME,
    }


def _backoff() -> ExponentialWithJitterBackoff:
    return ExponentialWithJitterBackoff(cap=_BACKOFF_CAP, base=_BACKOFF_BASE)


def _auth(target: RedisTarget) -> dict[str, Any]:
    auth: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.tls:
        auth["ssl"] = True
    return auth


def _sentinel_options(target: RedisTarget, timeout: float) -> dict[str, Any]:
    """How to talk to the sentinels themselves: their own credentials, short timeouts."""
    options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if target.sentinel_username:
        options["username"] = target.sentinel_username
    if target.sentinel_password:
        options["password"] = target.sentinel_password
    if target.tls:
        options["ssl"] = True
    return options


@contextmanager
def _unreachable_as_connection_error(
    kind: type[RedisClusterException] = RedisClusterException,
) -> Iterator[None]:
    """redis-py's own cluster errors of `kind` that are outside `RedisError` (no node
    answers, a slot nobody serves), raised as `ConnectionError`: for the callers, Redis is
    unavailable. Others (keys of several slots in one command: a bug) pass unchanged."""
    try:
        yield
    except kind as exc:
        if isinstance(exc, redis.RedisError):
            raise
        raise RedisConnectionError(str(exc)) from exc


class _Cluster(redis.asyncio.cluster.RedisCluster):
    """A `RedisCluster` whose `pubsub()` subscribes through one node, as one server would.

    Conveyor's channels carry plain PUBLISH messages, which Redis Cluster broadcasts to
    every node, so any node hears them all. Each `pubsub()` takes the next seed node in
    turn, so a listener that reconnects after its node failed tries another. (redis-py's
    own cluster pub/sub needs the slot map loaded first, and exists only in recent
    versions.)
    """

    def __init__(self, seeds: list[tuple[str, int]], node_options: dict[str, Any], **kw: Any):
        super().__init__(
            startup_nodes=[redis.asyncio.cluster.ClusterNode(h, p) for h, p in seeds],
            **node_options,
            **kw,
        )
        self._seeds = seeds
        self._node_options = node_options
        self._next_seed = 0

    async def initialize(self, *args: Any, **kwargs: Any) -> redis.asyncio.cluster.RedisCluster:
        """As `RedisCluster.initialize`, but "no node answers" is a `ConnectionError`: every
        loop that waits for Redis to come back (worker, scheduler, API's 503) catches that,
        while redis-py raises a class outside `RedisError` for it."""
        with _unreachable_as_connection_error():
            return await super().initialize(*args, **kwargs)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """As `RedisCluster.execute_command`; a slot no master serves (a master down with no
        replica to take over) is a `ConnectionError` too, for the same reason."""
        with _unreachable_as_connection_error(SlotNotCoveredError):
            return await super().execute_command(*args, **kwargs)

    def pubsub(self, **kwargs: Any) -> PubSub:  # type: ignore[override]
        host, port = self._seeds[self._next_seed % len(self._seeds)]
        self._next_seed += 1
        node = redis.asyncio.Redis(host=host, port=port, **self._node_options)
        return node.pubsub(**kwargs)


def connect_url(
    url: str, *, timeout_seconds: float, blocking_read_seconds: float = 0.0
) -> redis.asyncio.Redis:
    """An asyncio client for `url` in whichever mode it names; it connects on first use."""
    target = parse_target(url)
    options = _options(timeout_seconds, blocking_read_seconds)
    # (typed for RedisError subclasses only; it catches any exception class given)
    retry = redis.asyncio.retry.Retry(
        _backoff(),
        RETRIES,
        supported_errors=_RETRY_ON,  # type: ignore[arg-type]
    )
    if target.mode is Mode.CLUSTER:
        cluster = _Cluster(list(target.nodes), {**_auth(target), **options}, retry=retry)
        return cast(redis.asyncio.Redis, cluster)
    if target.mode is Mode.SENTINEL:
        sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(target.nodes), sentinel_kwargs=_sentinel_options(target, timeout_seconds)
        )
        primary: redis.asyncio.Redis = sentinel.master_for(
            target.service, db=target.db, retry=retry, **_auth(target), **options
        )
        return use_hiredis_packing(primary)
    return use_hiredis_packing(redis.asyncio.Redis.from_url(target.url, retry=retry, **options))


def connect_url_sync(url: str, *, timeout_seconds: float) -> redis.Redis:
    """The same client, synchronous: for CLI commands and scripts."""
    target = parse_target(url)
    options = _options(timeout_seconds, 0.0)
    retry = redis.retry.Retry(_backoff(), RETRIES, supported_errors=_RETRY_ON)
    if target.mode is Mode.CLUSTER:
        cluster = redis.cluster.RedisCluster(
            startup_nodes=[
                redis.cluster.ClusterNode(h, p)  # type: ignore[no-untyped-call]
                for h, p in target.nodes
            ],
            retry=retry,
            **_auth(target),
            **options,
        )
        return cast(redis.Redis, cluster)
    if target.mode is Mode.SENTINEL:
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(target.nodes), sentinel_kwargs=_sentinel_options(target, timeout_seconds)
        )
        primary: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            target.service, db=target.db, retry=retry, **_auth(target), **options
        )
        return primary
    return redis.Redis.from_url(target.url, retry=retry, **options)


def connect(settings: Settings, *, blocking_read_seconds: float = 0.0) -> redis.asyncio.Redis:
    """An asyncio client for ``settings.redis_url``; it connects on first use.

    Give `blocking_read_seconds` for a client that runs ``BLOCK`` reads of that length.
    """
    return connect_url(
        settings.redis_url,
        timeout_seconds=settings.redis_timeout_seconds,
        blocking_read_seconds=blocking_read_seconds,
    )


def connect_sync(settings: Settings, *, blocking_read_seconds: float = 0.0) -> redis.Redis:
    """The same client, synchronous: for CLI commands and scripts."""
    if blocking_read_seconds:
        raise ValueError("synchronous clients make no blocking reads")
    return connect_url_sync(settings.redis_url, timeout_seconds=settings.redis_timeout_seconds)


def is_cluster(client: object) -> bool:
    """Whether `client` (asyncio or sync) talks to a Redis Cluster."""
    return isinstance(client, redis.asyncio.cluster.RedisCluster | redis.cluster.RedisCluster)


def answers(url: str, timeout_seconds: float = 1.0) -> bool:
    """Whether the Redis (any mode) at `url` answers a PING now."""
    try:
        client = connect_url_sync(url, timeout_seconds=timeout_seconds)
    except (redis.RedisError, RedisClusterException):  # a Cluster client connects at once
        return False
    try:
        return bool(client.ping())
    except (redis.RedisError, RedisClusterException):
        return False
    finally:
        client.close()


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


@dataclass(frozen=True, slots=True)
class RedisCheck:
    """What `check_redis` found about the server's settings.

    `unsafe`: Redis drops jobs by itself while it runs (a maxmemory-policy that evicts);
    `/readyz` fails on it. `warnings`: jobs are lost on a restart (no AOF), or a setting
    could not be verified (managed services often refuse CONFIG GET)."""

    unsafe: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def messages(self) -> list[str]:
        return [*self.unsafe, *self.warnings]

    def __add__(self, other: RedisCheck) -> RedisCheck:
        return RedisCheck(self.unsafe + other.unsafe, self.warnings + other.warnings)


async def check_redis(r: redis.asyncio.Redis) -> RedisCheck:
    """The server settings that can lose jobs (every master of a Cluster); empty when all
    is well. One round trip per server. Connection errors propagate."""
    if is_cluster(r):
        return await _check_cluster(cast(redis.asyncio.cluster.RedisCluster, r))
    try:
        reply = await r.config_get("maxmemory-policy", "appendonly")
    except ResponseError as exc:
        return _refused(exc)
    return _check(_config_value(reply, "maxmemory-policy"), _config_value(reply, "appendonly"))


async def _check_cluster(cluster: redis.asyncio.cluster.RedisCluster) -> RedisCheck:
    """`check_redis` for each master of a cluster: each one holds some queues."""
    await cluster.initialize()
    found = RedisCheck()
    for node in cluster.get_primaries():
        try:
            reply = await cluster.config_get("*", target_nodes=node)
        except ResponseError as exc:
            found += _refused(exc, f"{node.name}: ")
            continue
        check = _check(_config_value(reply, "maxmemory-policy"), _config_value(reply, "appendonly"))
        found += RedisCheck(
            tuple(f"{node.name}: {m}" for m in check.unsafe),
            tuple(f"{node.name}: {m}" for m in check.warnings),
        )
    return found


def _refused(exc: ResponseError, where: str = "") -> RedisCheck:
    return RedisCheck(
        warnings=(
            f"{where}could not check maxmemory-policy and appendonly (CONFIG GET was refused: "
            f"{exc}); make sure Redis uses noeviction and persistence",
        )
    )


def _check(policy: str | None, appendonly: str | None) -> RedisCheck:
    unsafe: list[str] = []
    warnings: list[str] = []
    if policy is None:
        warnings.append("could not check maxmemory-policy: CONFIG GET did not return it")
    elif policy != "noeviction":
        unsafe.append(
            f"maxmemory-policy is {policy}; Conveyor needs noeviction or jobs can be evicted"
        )
    if appendonly is None:
        warnings.append("could not check appendonly: CONFIG GET did not return it")
    elif appendonly != "yes":
        warnings.append("appendonly is off: a Redis restart loses jobs")
    return RedisCheck(tuple(unsafe), tuple(warnings))
