"""Pausing a queue: while its flag (``<prefix>:{q}:paused``) exists, no job of it starts.

The flag is read where jobs start, inside the scripts: ``read_claim.lua`` does not read a
paused queue's stream at all (nothing is delivered), and ``claim.lua`` hands a delivered
entry of a paused queue back to the stream, uncharged (docs/adr/0012-pause-and-resume.md).
Running jobs finish; the scheduler keeps promoting due jobs, which wait as pending. The
flag lives in Redis with the queue's other keys, so a pause outlives restarts of every
process, and ``retire.lua`` keeps a paused queue in the registry.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from conveyor.store.inspect import queue_stats
from conveyor.store.keys import Keys
from conveyor.values import QueueStats


async def set_paused(redis: Redis, keys: Keys, queue: str, paused: bool) -> QueueStats | None:
    """Pause (`paused` True) or resume a known queue; its statistics after the change,
    None (and nothing written) when the queue is unknown. Pausing a paused queue, or
    resuming a running one, changes nothing."""
    known: Any = await redis.sismember(keys.queues, queue)
    if not known:
        return None
    flag = keys.queue(queue).paused
    if paused:
        await redis.set(flag, "1")
    else:
        await redis.delete(flag)
    return await queue_stats(redis, keys, queue)
