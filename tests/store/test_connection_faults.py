"""Regression: a Redis connection reset by the network while idle in the pool.

Under uvloop (the event loop of every Conveyor process), redis-py's next write on such a
connection raised a bare RuntimeError ("unable to perform operation on <TCPTransport
closed=True>") that no loop caught: the scheduler exited, the worker's finisher gave up at
once. The clients from shared.redis_conn now retry it on a new connection.
"""

from __future__ import annotations

import asyncio

import uvloop

from conveyor.config import Settings
from conveyor.redis_conn import connect
from tests.helpers.fault_proxy import FaultProxy
from tests.helpers.redis_server import RedisServer


def test_a_connection_reset_while_idle_is_reopened_under_uvloop(
    redis_server: RedisServer,
) -> None:
    proxy = FaultProxy(redis_server.port)
    proxy.start()

    async def scenario() -> list[object]:
        client = connect(Settings(redis_url=proxy.url))
        try:
            before = await client.ping()
            assert proxy.reset_all() == 1
            await asyncio.sleep(0.2)  # the RST arrives; the connection sits idle, closed
            after = await client.ping()
            async with client.pipeline(transaction=False) as pipe:
                pipe.ping()
                assert proxy.reset_all() == 1
                await asyncio.sleep(0.2)
                piped: list[object] = await pipe.execute()
            return [before, after, *piped]
        finally:
            await client.aclose()

    try:
        assert uvloop.run(scenario()) == [True, True, True]
    finally:
        proxy.stop()
