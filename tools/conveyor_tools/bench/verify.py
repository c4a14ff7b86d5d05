"""Every job completed exactly once: index counts and each job's hash agree."""

from __future__ import annotations

import redis

from conveyor.states import Status
from conveyor.store.keys import Keys
from conveyor_tools.bench import hashes


def problems(client: redis.Redis, prefix: str, runs: dict[str, list[str]]) -> list[str]:
    """What is wrong with the queues `runs` maps to the ids enqueued there (empty: all good)."""
    found: list[str] = []
    for queue, ids in runs.items():
        keys = Keys(prefix).queue(queue)
        completed = int(client.zcard(keys.index(Status.COMPLETED)))
        failed = int(client.zcard(keys.index(Status.FAILED)))
        if completed != len(ids):
            found.append(f"{queue}: {completed} completed of {len(ids)} enqueued")
        if failed:
            found.append(f"{queue}: {failed} failed")
        if len(set(ids)) != len(ids):
            found.append(f"{queue}: duplicate job ids returned by enqueue")
        times = hashes.read(client, prefix, queue, ids)
        not_done = sum(1 for t in times if t.status != Status.COMPLETED.value)
        repeated = sum(1 for t in times if t.attempts != 1)
        if not_done:
            found.append(f"{queue}: {not_done} jobs not in status completed")
        if repeated:
            found.append(f"{queue}: {repeated} jobs ran more than once (attempts != 1)")
    return found
