"""Reading a deployment's Redis from a synchronous test: job hashes, key digests and the
layout invariants (tests/helpers/invariants.py, run on a private event loop)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis

from conveyor.store.keys import Keys
from tests.helpers.invariants import check_invariants

JobHashes = dict[str, dict[str, bytes]]


def client(url: str, timeout: float = 5.0) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def job_hashes(r: redis.Redis, keys: Keys, queue: str, ids: Sequence[str]) -> JobHashes:
    """The hash of every job in `ids` (field names decoded); {} for a missing job."""
    out: JobHashes = {}
    q = keys.queue(queue)
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        with r.pipeline(transaction=False) as pipe:
            for job_id in chunk:
                pipe.hgetall(q.job(job_id))
            replies: list[Any] = pipe.execute()
        for job_id, raw in zip(chunk, replies, strict=True):
            out[job_id] = {k.decode(): v for k, v in raw.items()}
    return out


def statuses(r: redis.Redis, keys: Keys, queue: str, ids: Sequence[str]) -> dict[str, str]:
    q = keys.queue(queue)
    out: dict[str, str] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        with r.pipeline(transaction=False) as pipe:
            for job_id in chunk:
                pipe.hget(q.job(job_id), "status")
            replies: list[Any] = pipe.execute()
        for job_id, raw in zip(chunk, replies, strict=True):
            out[job_id] = raw.decode() if raw else "missing"
    return out


def all_in(r: redis.Redis, keys: Keys, queue: str, ids: Sequence[str], wanted: set[str]) -> bool:
    return all(s in wanted for s in statuses(r, keys, queue, ids).values())


def digest(r: redis.Redis, match: str = "*") -> tuple[int, str]:
    """DBSIZE and a sha256 over every matching key's name, DUMP and TTL presence: equal
    before and after a request means the request wrote nothing."""
    names = sorted(r.scan_iter(match=match, count=1000))
    h = hashlib.sha256()
    with r.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.dump(name)
            pipe.pttl(name)
        replies: list[Any] = pipe.execute()
    for i, name in enumerate(names):
        dumped, ttl = replies[2 * i], replies[2 * i + 1]
        h.update(name + b"\0" + (dumped or b"") + (b"\1" if ttl and ttl > 0 else b"\0"))
    return int(r.dbsize()), h.hexdigest()


def invariant_problems(url: str, prefix: str, queues: Iterable[str] | None = None) -> list[str]:
    async def run() -> list[str]:
        r = AsyncRedis.from_url(url, socket_timeout=10)
        try:
            return await check_invariants(r, Keys(prefix), queues)
        finally:
            await r.aclose()

    return asyncio.run(run())


def assert_invariants(url: str, prefix: str, queues: Iterable[str] | None = None) -> None:
    problems = invariant_problems(url, prefix, queues)
    assert problems == [], "invariant violations:\n" + "\n".join(problems[:50])
