"""shared.redis_packing: hiredis packs the same bytes as redis-py's Python packer, and
the product's asyncio clients use it."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import (
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.exceptions import DataError

from conveyor.redis_conn import connect_url
from conveyor.redis_packing import HiredisPacking, hiredis_packing

HiredisConnection = hiredis_packing(Connection)

COMMANDS: list[tuple[Any, ...]] = [
    ("PING",),
    ("SET", "key", "value"),
    ("CONFIG GET", "maxmemory-policy"),  # a command name of two words
    (b"CLIENT SETNAME", b"worker"),
    ("EVALSHA", "a" * 40, 2, "{q}:stream", "{q}:job:1", "id", b"\x81\xa1i\x05", "", 0, -7),
    ("ZADD", "z", 1.5, "m", 0.1, "n", 1e20, "o", 3.0, "p", 10**18, "q"),
    ("SET", "unicode", "é✓ 日本"),
    ("SET", "big", b"x" * 100_000),  # above redis-py's buffer cutoff: chunked there
    ("SET", "view", memoryview(b"bytes")),
    ("SET", "array", bytearray(b"bytes")),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_hiredis_packs_the_bytes_redis_py_packs(command: tuple[Any, ...]) -> None:
    python, c = Connection(), HiredisConnection()
    assert b"".join(c.pack_command(*command)) == b"".join(python.pack_command(*command))
    assert b"".join(c.pack_commands([command, command])) == b"".join(
        python.pack_commands([command, command])
    )


@pytest.mark.parametrize("value", [None, True, [1], {"a": 1}, object()])
def test_values_redis_py_refuses_are_refused_as_data_errors(value: Any) -> None:
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", value)
    with pytest.raises(DataError):
        HiredisConnection().pack_command("SET", "k", value)


def test_one_subclass_per_connection_class() -> None:
    assert hiredis_packing(Connection) is HiredisConnection
    assert hiredis_packing(HiredisConnection) is HiredisConnection
    ssl = hiredis_packing(SSLConnection)
    assert issubclass(ssl, SSLConnection)
    assert issubclass(ssl, HiredisPacking)


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("redis://127.0.0.1:6390/0", Connection),
        ("rediss://127.0.0.1:6390/0", SSLConnection),
        ("unix:///tmp/conveyor-test.sock?db=0", UnixDomainSocketConnection),
    ],
)
def test_the_products_clients_pack_with_hiredis(url: str, base: type) -> None:
    client = connect_url(url, timeout_seconds=1)  # connects on first use: not here
    made = client.connection_pool.make_connection()
    assert isinstance(made, base)
    assert isinstance(made, HiredisPacking)


def test_a_sentinel_client_packs_with_hiredis() -> None:
    client = connect_url("redis+sentinel://127.0.0.1:26390/mymaster", timeout_seconds=1)
    assert issubclass(client.connection_pool.connection_class, HiredisPacking)
