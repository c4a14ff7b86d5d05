"""What ``CONVEYOR_REDIS_URL`` names: one Redis, a Redis Cluster, or a Sentinel-managed primary.

- ``redis://``, ``rediss://``, ``unix://``: one server (standalone); the URL goes to
  redis-py unchanged.
- ``redis+cluster://[user:password@]host:port[,host:port...][/0]`` (``rediss+cluster://``
  for TLS): seed nodes of a Redis Cluster; the client learns the others from them.
- ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]``
  (``rediss+sentinel://`` for TLS): the sentinels watching the primary named `service`.
  The credentials are those of the Redis servers; the sentinels' own are given as the
  query options ``sentinel_username`` and ``sentinel_password``.

`parse_target` checks a URL and says precisely what is wrong, without echoing it (it may
hold a password): `Invalid` carries only what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from urllib.parse import parse_qsl, unquote, urlsplit

from conveyor.config_values import Invalid

STANDALONE_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
ALL_SCHEMES = STANDALONE_SCHEMES + CLUSTER_SCHEMES + SENTINEL_SCHEMES
DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379
SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")
EXPECTED = "must be a redis://, rediss://, unix://, redis+cluster:// or redis+sentinel:// URL"
# A node: "host", "host:port", "[v6]" or "[v6]:port".
_NODE = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\[\]:/,@]+))(?::(?P<port>\d+))?")
_SERVICE = re.compile(r"[A-Za-z0-9._-]{1,128}")


class Mode(StrEnum):
    STANDALONE = "standalone"
    CLUSTER = "cluster"
    SENTINEL = "sentinel"


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A parsed Redis URL. For standalone, `url` is all redis-py needs."""

    mode: Mode
    url: str = field(repr=False)
    nodes: tuple[tuple[str, int], ...] = ()
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int = 0
    service: str = ""  # sentinel: the monitored primary's name
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)


def parse_redis_url(value: object, text: bool) -> str:
    """The `Settings.redis_url` parser: the URL, unchanged, once `parse_target` accepts it."""
    if not isinstance(value, str):
        raise Invalid(EXPECTED, wrong_type=True)
    url = value.strip() if text else value
    parse_target(url)
    return url


def mode_of(url: str) -> Mode:
    """The mode a URL asks for, from its scheme alone (the URL is assumed valid)."""
    scheme = url.split("://", 1)[0].lower()
    if scheme in CLUSTER_SCHEMES:
        return Mode.CLUSTER
    if scheme in SENTINEL_SCHEMES:
        return Mode.SENTINEL
    return Mode.STANDALONE


def parse_target(url: str) -> RedisTarget:
    """Check `url` and split it into what a client needs; `Invalid` says what is wrong."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ALL_SCHEMES:
        raise Invalid(EXPECTED)
    if scheme in STANDALONE_SCHEMES:
        return RedisTarget(Mode.STANDALONE, _standalone(url, scheme))
    userinfo, at, after = rest.rpartition("@")
    if at and ("/" in userinfo or "?" in userinfo):
        raise Invalid("must percent-encode '/', '?' and '@' in the user name and password")
    hosts, _, tail = after.partition("/")
    path, _, query = tail.partition("?")
    if "?" in hosts:
        hosts, _, query = hosts.partition("?")
    nodes = _nodes(hosts, DEFAULT_PORT if scheme in CLUSTER_SCHEMES else DEFAULT_SENTINEL_PORT)
    username, password = _credentials(userinfo) if at else (None, None)
    options = _options(query, () if scheme in CLUSTER_SCHEMES else SENTINEL_OPTIONS)
    target = RedisTarget(
        Mode.CLUSTER,
        url,
        nodes,
        tls=scheme.startswith("rediss"),
        username=username,
        password=password,
    )
    if scheme in CLUSTER_SCHEMES:
        if path.strip("/") not in ("", "0"):
            raise Invalid("must not name a database other than 0: Redis Cluster has only db 0")
        return target
    service, _, db = path.strip("/").partition("/")
    if not _SERVICE.fullmatch(service):
        raise Invalid(
            "must name the monitored primary after the sentinels, e.g. "
            "redis+sentinel://host:26379/mymaster (letters, digits, '.', '_', '-')"
        )
    if db and not db.isdigit():
        raise Invalid(
            "must name the database as a number, e.g. redis+sentinel://host:26379/mymaster/0"
        )
    return replace(
        target,
        mode=Mode.SENTINEL,
        service=service,
        db=int(db or 0),
        sentinel_username=options.get("sentinel_username"),
        sentinel_password=options.get("sentinel_password"),
    )


def _standalone(url: str, scheme: str) -> str:
    expected = f"must be a {scheme}:// URL"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError:
        if "," in url.partition("://")[2].partition("/")[0]:
            raise Invalid(
                "names several hosts: use redis+cluster:// for a Redis Cluster or "
                "redis+sentinel://.../service for Sentinel"
            ) from None
        raise Invalid(expected + " with a valid host and port") from None
    if scheme == "unix":
        if not parts.path:
            raise Invalid("must name the socket path, e.g. unix:///run/redis.sock")
        return url
    if not parts.hostname:
        raise Invalid(expected + " with a host")
    database = parts.path.strip("/")
    if database and not database.isdigit():
        raise Invalid("must name the database as a number, e.g. redis://host:6379/0")
    return url


def _nodes(hosts: str, default_port: int) -> tuple[tuple[str, int], ...]:
    if not hosts:
        raise Invalid("must name at least one host:port")
    out: list[tuple[str, int]] = []
    for i, item in enumerate(hosts.split(","), 1):
        match = _NODE.fullmatch(item.strip())
        if match is None:
            raise Invalid(f"node {i} must be host:port (IPv6 as [addr]:port)")
        port = int(match["port"]) if match["port"] else default_port
        if not 1 <= port <= 65535:
            raise Invalid(f"node {i} must have a port between 1 and 65535")
        node = (match["v6"] or match["host"], port)
        if node in out:
            raise Invalid(f"node {i} repeats an earlier node")
        out.append(node)
    return tuple(out)


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None, unquote(password) if colon else None)


def _options(query: str, known: tuple[str, ...]) -> dict[str, str]:
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in known:
            allowed = f" (known: {', '.join(known)})" if known else ""
            raise Invalid(f"has an unknown option {name!r}{allowed}")
        options[name] = value
    return options
