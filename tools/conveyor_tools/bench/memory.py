"""Redis memory per waiting job: used_memory growth over N pending jobs, then removed."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.redis_conn import connect_url_sync
from conveyor.store.keys import Keys
from conveyor_tools.bench.load import fill
from conveyor_tools.bench.redisinfo import sample
from conveyor_tools.bench.server import Target, delete_prefix, forget_queue


@dataclass(frozen=True)
class MemoryResult:
    jobs: int
    bytes_per_job: float


def run(target: Target, queue: str, n: int, batch: int) -> MemoryResult:
    """These jobs never run: they are measured while waiting, then their keys are deleted."""
    client = connect_url_sync(target.url, timeout_seconds=30)
    try:
        before = sample(client)
        _, ids = fill(target.url, target.prefix, queue, n, batch)
        after = sample(client)
        delete_prefix(target.url, Keys(target.prefix).queue(queue).base)
        forget_queue(client, target.prefix, queue, ids)
    finally:
        client.close()
    return MemoryResult(len(ids), (after.used_memory - before.used_memory) / max(len(ids), 1))
