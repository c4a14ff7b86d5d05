"""Commands packed by hiredis's C packer on the asyncio connections.

redis-py's asyncio connections build each command's RESP bytes in Python
(`Connection.pack_command`); its sync connections use hiredis's `pack_command` when hiredis
is installed, the asyncio ones do not (redis-py 8.1). Conveyor's hot paths are script calls
with many arguments (a single-job enqueue sends about 30: twelve queue keys, the job's
key and its fields), where the Python packer costs about ten times what hiredis does for
the same bytes (41 µs against 4 µs per call, measured on this project's 2-core machine). So
the standalone and Sentinel clients create their connections from a subclass that packs
with hiredis, the way redis-py's own sync `HiredisRespSerializer` does.

Redis Cluster clients keep redis-py's packer: their node connection class is fixed inside
redis-py's cluster client.
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import DataError


class HiredisPacking:
    """Mixin for an asyncio connection class: `pack_command` in C.

    The bytes are those of redis-py's packer (str as UTF-8, ints and floats by their repr);
    a value neither packer takes (None, bool, a list...) is a `DataError`, as before."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):
            args = tuple(args[0].encode().split()) + args[1:]
        elif b" " in args[0]:
            args = tuple(args[0].split()) + args[1:]
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:
            if any(isinstance(a, bytearray) for a in args):  # taken by redis-py's packer
                return [hiredis.pack_command(tuple(_bytes(a) for a in args))]
            raise DataError(
                f"Invalid input ({exc}). Convert to a bytes, string, int or float first."
            ) from exc


def _bytes(value: Any) -> Any:
    return bytes(value) if isinstance(value, bytearray) else value


_classes: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def hiredis_packing(cls: type[AbstractConnection]) -> type[AbstractConnection]:
    """`cls` with `HiredisPacking` mixed in (one subclass per class, made once)."""
    if issubclass(cls, HiredisPacking):
        return cls
    made = _classes.get(cls)
    if made is None:
        made = _classes[cls] = type(f"Hiredis{cls.__name__}", (HiredisPacking, cls), {})
    return made


def use_hiredis_packing(client: Redis) -> Redis:
    """Make `client`'s pool create its connections with hiredis packing. Call it before the
    first command: connections made earlier keep the Python packer."""
    pool = client.connection_pool
    pool.connection_class = hiredis_packing(pool.connection_class)
    return client
