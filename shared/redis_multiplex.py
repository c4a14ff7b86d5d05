"""One multiplexed Redis connection for the worker's hot path (ADR 0009).

A worker sends a few kinds of commands per job: the blocking read, the claim script, the
finish script, the lease renewals. Through redis-py's asyncio client one such round trip
costs about 140 µs of the worker's CPU and time on this project's machine, a bare
``asyncio.Protocol`` with hiredis's reply parser about 20 µs for the same bytes (PING, p50):
the connection pool, its locks, the stream reader and the per-call timeout contexts are the
difference. With one job taking four round trips, that overhead was the largest part of a
job's pickup latency and of the worker's CPU per job.

`MultiplexedRedis` is that bare connection: every command is written at once on one TCP (or
Unix) connection and its reply is matched to it by order, as Redis answers a connection's
commands in the order they came. Many callers share the connection without waiting for
each other. It offers the few methods of `redis.asyncio.Redis` the hot path uses
(`evalsha`, `script_load`, `xreadgroup`, `execute_command`, a non-transactional
`pipeline`) with the same reply shapes and redis-py's exception classes, so the stores and
the error classifier (shared/redis_errors.py) treat both clients alike.

Failure semantics, as the redis-py clients of shared/redis_conn.py are configured:

- a call waits at most its timeout for its reply; a reply that does not come in time
  means the connection can no longer be trusted (later replies would be matched to the
  wrong calls), so the connection is closed and every call waiting on it fails with
  `TimeoutError`; the next call connects again;
- a connection closed by the server fails its waiting calls with `ConnectionError`;
- a call that failed with either is sent once more, after a short jittered backoff (the
  transition scripts are written to be sent again, see shared/store/lua);
- a cancelled call leaves its place in the order: its reply is read and dropped.

Only plain standalone URLs (``redis://``, ``unix://``) use it; TLS, Sentinel and Cluster
keep redis-py (`connect_multiplexed` returns None for them).
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Any, cast

import hiredis
from redis import exceptions as e
from redis._parsers.base import BaseParser
from redis.asyncio.connection import parse_url

from conveyor.config import Settings
from conveyor.config_redis import Mode, parse_target

Arg = str | bytes | int | float
CLIENT_NAME = "conveyor"
RETRIES = 1
_BACKOFF_BASE = 0.05
_BACKOFF_CAP = 0.25


class _ReplyError(Exception):
    """What hiredis builds for an error reply; turned into redis-py's class on delivery."""


def _as_redis_error(reply: _ReplyError) -> e.RedisError:
    """The exception redis-py raises for the same error reply (its own parser's mapping:
    NOSCRIPT is `NoScriptError`, READONLY `ReadOnlyError`, LOADING `BusyLoadingError`...)."""
    error: e.RedisError = BaseParser.parse_error(str(reply))  # type: ignore[no-untyped-call]
    return error


class _Waiter:
    __slots__ = ("deadline", "future")

    def __init__(self, future: asyncio.Future[Any], deadline: float) -> None:
        self.future = future
        self.deadline = deadline


class _Protocol(asyncio.Protocol):
    """The connection's reply side: parse replies, hand each to the oldest waiting call."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader(replyError=_ReplyError, protocolError=e.InvalidResponse)
        self.waiting: deque[_Waiter] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.failure: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        reader, waiting = self.reader, self.waiting
        reader.feed(data)
        while True:
            try:
                reply = reader.gets()
            except e.InvalidResponse as exc:
                self.fail(exc)
                return
            if reply is False:
                return
            if not waiting:  # a reply nobody asked for: the order is lost
                self.fail(e.InvalidResponse("unexpected reply from Redis"))
                return
            future = waiting.popleft().future
            if not future.done():
                future.set_result(reply)

    def usable(self) -> bool:
        """Open and not closing: a server's EOF marks the transport closing before
        `connection_lost` runs, and a write then would be lost."""
        if not self.closed and self.transport is not None and self.transport.is_closing():
            self.fail(e.ConnectionError("Connection closed by server."))
        return not self.closed

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(e.ConnectionError("Connection closed by server."))

    def fail(self, exc: BaseException) -> None:
        """Close the connection; every call still waiting on it fails with `exc`."""
        if self.failure is None:
            self.failure = exc
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        while self.waiting:
            future = self.waiting.popleft().future
            if not future.done():
                future.set_exception(_copy(exc))


def _copy(exc: BaseException) -> BaseException:
    """A fresh instance per waiter: one exception object raised in many tasks would
    collect all their tracebacks."""
    try:
        return type(exc)(*exc.args)
    except Exception:  # pragma: no cover - every class used here takes its args back
        return exc


class _Pipeline:
    """`redis.asyncio` pipeline look-alike (non-transactional): queue, then one write."""

    def __init__(self, conn: MultiplexedRedis) -> None:
        self._conn = conn
        self._commands: list[tuple[Arg, ...]] = []

    async def __aenter__(self) -> _Pipeline:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._commands = []

    def execute_command(self, *args: Arg) -> _Pipeline:
        self._commands.append(args)
        return self

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        commands, self._commands = self._commands, []
        replies = await self._conn.execute_many(commands)
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        return replies


class MultiplexedRedis:
    """One lazily opened connection shared by every caller; see the module docstring.

    `timeout`: how long a call waits for its reply (and for the connection to open);
    `blocking_read_seconds`: added to it for every call, for a connection that sends
    ``XREADGROUP BLOCK`` reads of that length (as shared/redis_conn.py does).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        blocking_read_seconds: float = 0.0,
        client_name: str = CLIENT_NAME,
    ) -> None:
        options = parse_url(url)
        self._path: str | None = options.get("path")
        self._host: str = options.get("host", "localhost")
        self._port: int = int(options.get("port", 6379))
        self._username: str | None = options.get("username")
        self._password: str | None = options.get("password")
        self._db = int(options.get("db", 0))
        self._client_name = client_name
        self.connect_timeout = timeout
        self.timeout = timeout + blocking_read_seconds
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def __repr__(self) -> str:  # never the password
        where = self._path or f"{self._host}:{self._port}"
        return f"<MultiplexedRedis {where} db={self._db}>"

    # -- the redis.asyncio.Redis subset the hot path uses ---------------------------------

    async def execute_command(self, *args: Arg) -> Any:
        (reply,) = await self.execute_many([args])
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Arg) -> Any:
        return await self.execute_command("EVALSHA", sha, numkeys, *keys_and_args)

    async def script_load(self, source: str) -> str:
        sha = await self.execute_command("SCRIPT", "LOAD", source)
        return sha.decode() if isinstance(sha, bytes) else str(sha)

    async def xreadgroup(
        self,
        groupname: str,
        consumername: str,
        streams: dict[str, str],
        count: int | None = None,
        block: int | None = None,
    ) -> list[list[Any]]:
        """As redis-py's (RESP2): ``[[stream, [(entry_id, {field: value}), ...]], ...]``."""
        args: list[Arg] = ["XREADGROUP", "GROUP", groupname, consumername]
        if count is not None:
            args += ["COUNT", count]
        if block is not None:
            args += ["BLOCK", block]
        args += ["STREAMS", *streams.keys(), *streams.values()]
        reply = await self.execute_command(*args)
        out: list[list[Any]] = []
        for stream, entries in reply or ():
            parsed = []
            for entry_id, fields in entries:
                pairs = dict(zip(fields[::2], fields[1::2], strict=True)) if fields else None
                parsed.append((entry_id, pairs))
            out.append([stream, parsed])
        return out

    def pipeline(self, transaction: bool = False) -> _Pipeline:
        if transaction:
            raise ValueError("a multiplexed connection sends no MULTI/EXEC transactions")
        return _Pipeline(self)

    async def aclose(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._protocol is not None:
            self._protocol.fail(e.ConnectionError("connection closed by the client"))
            self._protocol = None

    # -- sending ---------------------------------------------------------------------------

    async def execute_many(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """Send `commands` in one write; their replies in order, an error reply as its
        exception instance. A lost connection or a timeout is raised (after one retry)."""
        payload = b"".join(_pack(c) for c in commands)
        attempt = 0
        while True:
            try:
                return await self._send(payload, len(commands))
            except (e.ConnectionError, e.TimeoutError):
                if attempt >= RETRIES or self._closed:
                    raise
                attempt += 1
                await asyncio.sleep(random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2)))

    async def _send(self, payload: bytes, count: int) -> list[Any]:
        protocol = self._protocol
        if protocol is None or not protocol.usable():
            protocol = await self._connect()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        futures = [loop.create_future() for _ in range(count)]
        protocol.waiting.extend(_Waiter(f, deadline) for f in futures)
        assert protocol.transport is not None
        protocol.transport.write(payload)
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._check_deadlines)
        replies = []
        for future in futures:
            reply = await future
            replies.append(_as_redis_error(reply) if isinstance(reply, _ReplyError) else reply)
        return replies

    def _check_deadlines(self) -> None:
        """The oldest call waits the longest: past its deadline, the connection is dead."""
        self._timer = None
        protocol = self._protocol
        if protocol is None or protocol.closed or not protocol.waiting:
            return
        loop = asyncio.get_running_loop()
        oldest = protocol.waiting[0].deadline
        if oldest <= loop.time():
            protocol.fail(e.TimeoutError("Timeout reading from Redis"))
            return
        self._timer = loop.call_at(oldest, self._check_deadlines)

    async def _connect(self) -> _Protocol:
        if self._closed:
            raise e.ConnectionError("the connection was closed by the client")
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is not None and not self._protocol.closed:
                return self._protocol
            try:
                protocol = await asyncio.wait_for(self._open(), self.connect_timeout)
            except TimeoutError:
                raise e.TimeoutError(f"Timeout connecting to {self._where()}") from None
            except OSError as exc:
                raise e.ConnectionError(
                    f"Error {exc.errno} connecting to {self._where()}. {exc.strerror}."
                ) from None
            self._protocol = protocol
            return protocol

    def _where(self) -> str:
        return self._path or f"{self._host}:{self._port}"

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        if self._path:
            _, protocol = await loop.create_unix_connection(_Protocol, self._path)
        else:
            transport, protocol = await loop.create_connection(_Protocol, self._host, self._port)
            sock = transport.get_extra_info("socket")
            if sock is not None:  # each write is a whole request: never wait to fill segments
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        handshake: list[tuple[Arg, ...]] = []
        if self._password is not None:
            if self._username:
                handshake.append(("AUTH", self._username, self._password))
            else:
                handshake.append(("AUTH", self._password))
        if self._db:
            handshake.append(("SELECT", self._db))
        handshake.append(("CLIENT", "SETNAME", self._client_name))
        assert protocol.transport is not None
        futures = [loop.create_future() for _ in handshake]
        deadline = loop.time() + self.connect_timeout
        protocol.waiting.extend(_Waiter(f, deadline) for f in futures)
        protocol.transport.write(b"".join(_pack(c) for c in handshake))
        try:
            for future in futures:
                reply = await future
                if isinstance(reply, _ReplyError):
                    raise _as_redis_error(reply)
        except BaseException:
            protocol.fail(e.ConnectionError("handshake failed"))
            raise
        return protocol


def _pack(command: Sequence[Arg]) -> bytes:
    """RESP bytes of one command, packed in C (hiredis's stub types one argument only)."""
    packed: bytes = hiredis.pack_command(cast(Any, tuple(command)))
    return packed


def connect_multiplexed(
    settings: Settings, *, blocking_read_seconds: float = 0.0
) -> MultiplexedRedis | None:
    """A multiplexed connection to ``settings.redis_url``, or None where the URL needs
    redis-py (TLS, Sentinel, Cluster): the caller uses `conveyor.redis_conn.connect` then."""
    return connect_multiplexed_url(
        settings.redis_url,
        timeout_seconds=settings.redis_timeout_seconds,
        blocking_read_seconds=blocking_read_seconds,
    )


def connect_multiplexed_url(
    url: str, *, timeout_seconds: float, blocking_read_seconds: float = 0.0
) -> MultiplexedRedis | None:
    """`connect_multiplexed` for a URL (the Python client's `from_url`)."""
    target = parse_target(url)
    scheme = target.url.split("://", 1)[0].lower()
    if target.mode is not Mode.STANDALONE or scheme not in ("redis", "unix"):
        return None
    return MultiplexedRedis(
        target.url, timeout=timeout_seconds, blocking_read_seconds=blocking_read_seconds
    )
