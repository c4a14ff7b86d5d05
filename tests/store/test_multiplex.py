"""The worker's multiplexed connection (conveyor.redis_multiplex) against a real Redis:
replies reach their callers by order, errors are redis-py's, and a lost, silent or
refusing server fails calls the way the worker's loops expect (then it connects again)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis import exceptions as e
from redis.asyncio import Redis

from conveyor.client import Client
from conveyor.config import Settings
from conveyor.redis_multiplex import MultiplexedRedis, connect_multiplexed
from tests.helpers.fault_proxy import FaultProxy, Mode
from tests.helpers.redis_server import RedisServer, free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
async def m(redis_server: RedisServer) -> AsyncIterator[MultiplexedRedis]:
    conn = MultiplexedRedis(redis_server.url, timeout=5)
    yield conn
    await conn.aclose()


async def test_concurrent_callers_each_get_their_own_reply(
    m: MultiplexedRedis, prefix: str
) -> None:
    async def roundtrip(i: int) -> bytes:
        await m.execute_command("SET", f"{prefix}:k{i}", i)
        return bytes(await m.execute_command("GET", f"{prefix}:k{i}"))

    replies = await asyncio.gather(*(roundtrip(i) for i in range(500)))
    assert replies == [str(i).encode() for i in range(500)]


async def test_error_replies_are_redis_py_exceptions_and_the_connection_goes_on(
    m: MultiplexedRedis, prefix: str
) -> None:
    await m.execute_command("SET", f"{prefix}:s", "x")
    with pytest.raises(e.ResponseError, match="WRONGTYPE"):
        await m.execute_command("HGET", f"{prefix}:s", "f")
    with pytest.raises(e.NoScriptError):
        await m.evalsha("0" * 40, 0)
    async with m.pipeline(transaction=False) as pipe:
        pipe.execute_command("INCR", f"{prefix}:n")
        pipe.execute_command("HGET", f"{prefix}:s", "f")
        pipe.execute_command("INCR", f"{prefix}:n")
        replies = await pipe.execute(raise_on_error=False)
    assert replies[0] == 1
    assert replies[2] == 2
    assert isinstance(replies[1], e.ResponseError)
    assert await m.execute_command("PING") == b"PONG"


async def test_scripts_and_stream_reads_answer_as_redis_py_does(
    m: MultiplexedRedis, r: Redis, prefix: str
) -> None:
    sha = await m.script_load("return {KEYS[1], ARGV[1]}")
    assert await m.evalsha(sha, 1, "a", "b") == [b"a", b"b"]
    stream = f"{prefix}:stream"
    await r.xgroup_create(stream, "g", id="0", mkstream=True)
    await r.xadd(stream, {"id": "j1"})
    theirs = await m.xreadgroup("g", "c1", {stream: ">"}, count=5)
    await r.xadd(stream, {"id": "j2"})
    ours: Any = await r.xreadgroup("g", "c2", {stream: ">"}, count=5)
    assert [[s, [(type(i), f) for i, f in entries]] for s, entries in theirs] == [
        [stream.encode(), [(bytes, {b"id": b"j1"})]]
    ]
    assert len(ours) == 1
    assert ours[0][1][0][1] == {b"id": b"j2"}
    assert await m.xreadgroup("g", "c1", {stream: ">"}, count=5, block=1) == []


async def test_a_cancelled_call_keeps_the_order_of_the_replies(
    m: MultiplexedRedis, prefix: str
) -> None:
    slow = asyncio.ensure_future(m.execute_command("BLPOP", f"{prefix}:nothing", 0.3))
    await asyncio.sleep(0.05)
    slow.cancel()
    # Queued behind the BLPOP on the same connection: its reply is the PONG, not the nil.
    assert await m.execute_command("PING") == b"PONG"
    assert await m.execute_command("ECHO", "after") == b"after"


async def test_a_connection_killed_by_the_server_is_opened_again(
    m: MultiplexedRedis, r: Redis
) -> None:
    first = await m.execute_command("CLIENT", "ID")
    assert await r.client_kill_filter(_id=first) == 1
    # The first call after it fails on the dead connection, and its one retry reconnects.
    second = await m.execute_command("CLIENT", "ID")
    assert second != first
    assert await m.execute_command("CLIENT", "GETNAME") == b"conveyor"


def test_a_silent_server_times_out_the_waiting_calls_then_they_work_again(
    redis_server: RedisServer,
) -> None:
    proxy = FaultProxy(redis_server.port)
    proxy.start()

    async def scenario() -> None:
        conn = MultiplexedRedis(proxy.url, timeout=0.3)
        try:
            assert await conn.execute_command("PING") == b"PONG"
            proxy.set_mode(Mode.BLACKHOLE)
            calls = [conn.execute_command("PING") for _ in range(3)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert all(isinstance(x, e.TimeoutError) for x in results), results
            proxy.heal()
            assert await conn.execute_command("PING") == b"PONG"
        finally:
            await conn.aclose()

    try:
        asyncio.run(scenario())
    finally:
        proxy.stop()


async def test_nothing_listening_is_a_connection_error() -> None:
    conn = MultiplexedRedis(f"redis://127.0.0.1:{free_port()}/0", timeout=1)
    with pytest.raises(e.ConnectionError, match=r"connecting to 127\.0\.0\.1"):
        await conn.execute_command("PING")
    await conn.aclose()


async def test_password_db_and_a_wrong_password_that_is_not_shown(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "auth", password="s3cret-pw")
    server.start()
    try:
        good = MultiplexedRedis(f"redis://:s3cret-pw@127.0.0.1:{server.port}/3", timeout=2)
        await good.execute_command("SET", "k", "v")
        assert await good.execute_command("CLIENT", "INFO")
        assert b"db=3" in (await good.execute_command("CLIENT", "INFO"))
        await good.aclose()
        bad = MultiplexedRedis(f"redis://:wrong-pw-9@127.0.0.1:{server.port}/0", timeout=2)
        with pytest.raises(e.AuthenticationError) as caught:
            await bad.execute_command("PING")
        assert "wrong-pw-9" not in str(caught.value)
        assert "wrong-pw-9" not in repr(bad)
        await bad.aclose()
    finally:
        server.stop()


def test_only_plain_standalone_urls_are_multiplexed() -> None:
    assert connect_multiplexed(Settings(redis_url="redis://127.0.0.1:6379/0")) is not None
    assert connect_multiplexed(Settings(redis_url="unix:///tmp/redis.sock")) is not None
    for url in (
        "rediss://127.0.0.1:6380/0",
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
        "redis+sentinel://127.0.0.1:26379/mymaster",
    ):
        assert connect_multiplexed(Settings(redis_url=url)) is None, url


async def test_the_python_client_enqueues_over_its_multiplexed_connection(
    redis_server: RedisServer, prefix: str
) -> None:
    client = Client.from_url(redis_server.url, key_prefix=prefix)
    assert client.hot_redis is not None
    sent: list[list[Any]] = []
    real = client.hot_redis.execute_many

    async def counting(commands: Any) -> list[Any]:
        sent.append([c[0] for c in commands])
        return await real(commands)

    client.hot_redis.execute_many = counting  # type: ignore[method-assign]
    try:
        job = await client.enqueue("t.x", {"n": 1}, queue="q")
        assert (await client.get(job.id)).payload == {"n": 1}
        # The id index entry and the enqueue script in one write (then, on a server that
        # has not seen the script yet, SCRIPT LOAD and the script again).
        assert sent[0] == ["HSET", "EVALSHA"]
        assert sent[1:] in ([], [["EVALSHA"], ["SCRIPT"], ["EVALSHA"]])
        sent.clear()  # a large create goes over a pooled connection: no queueing behind it
        big = await client.enqueue("t.x", "x" * 100_000, queue="q")
        assert (await client.get(big.id)).payload == "x" * 100_000
        assert sent == []
        replicated = Client.from_url(redis_server.url, key_prefix=prefix, wait_replicas=1)
        assert replicated.store.hot_redis is None  # WAIT would hold the shared connection
        await replicated.aclose()
    finally:
        await client.aclose()
