"""Key-type tampering: run each store operation with one of the keys it touches replaced
by a key of the wrong type, and tell whether it wrote part of its change before failing.

A Lua script that fails halfway keeps the writes it made before the failing command, so a
WRONGTYPE in the middle of a transition would leave a job half moved (say, `completed` in
its hash but still in the running index and the PEL). Every script must check its keys'
types before its first write. Used by tests/store/test_key_types.py (the regression test)
and tests/faults/test_key_tampering.py (T12, which reports the figures).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from conveyor.store.consumer import ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.store.scheduling import SchedulerStore
from tests.helpers import seed

Q = seed.DEFAULT_QUEUE
Action = Callable[[], Awaitable[object]]


@dataclass
class Stores:
    r: Redis
    keys: Keys
    producer: ProducerStore
    consumer: ConsumerStore
    scheduler: SchedulerStore


def stores(r: Redis, keys: Keys) -> Stores:
    return Stores(
        r,
        keys,
        seed.producer_store(r, keys),
        seed.consumer_store(r, keys, "c1"),
        seed.scheduler_store(r, keys),
    )


async def _enqueue(s: Stores) -> tuple[Action, str | None]:
    await seed.enqueue(s.producer, Q)  # the queue's structures exist already
    return (lambda: seed.enqueue(s.producer, Q)), None


async def _cancel_pending(s: Stores) -> tuple[Action, str | None]:
    job = await seed.enqueue(s.producer, Q)
    await seed.deliver(s.consumer, Q)  # read, not claimed: its entry is in the PEL
    return (lambda: s.producer.cancel(job.id)), job.id


async def _cancel_scheduled(s: Stores) -> tuple[Action, str | None]:
    [job] = await seed.enqueue_scheduled(s.producer, Q)
    return (lambda: s.producer.cancel(job.id)), job.id


async def _cancel_running(s: Stores) -> tuple[Action, str | None]:
    job = await seed.enqueue(s.producer, Q)
    await seed.claim_one(s.consumer, Q)
    return (lambda: s.producer.cancel(job.id)), job.id


async def _claim(s: Stores) -> tuple[Action, str | None]:
    job = await seed.enqueue(s.producer, Q)
    deliveries = await seed.deliver(s.consumer, Q)
    return (lambda: s.consumer.claim(deliveries)), job.id


async def _fetch(s: Stores) -> tuple[Action, str | None]:
    """read_claim.lua: a job hash of another type is skipped (its entry dropped) rather
    than refused, since the script cannot check it before its XREADGROUP."""
    job = await seed.enqueue(s.producer, Q)
    await s.consumer.ensure_groups([Q])
    return (lambda: s.consumer.fetch([Q], count=10, block_ms=0)), job.id


async def _reclaim(s: Stores) -> tuple[Action, str | None]:
    job = await seed.enqueue(s.producer, Q)
    await seed.claim_one(seed.consumer_store(s.r, s.keys, "c0"), Q)
    deliveries = await seed.reclaim(s.consumer, Q)
    return (lambda: s.consumer.claim(deliveries)), job.id


async def _complete(s: Stores) -> tuple[Action, str | None]:
    await _one(s)
    job = await seed.claim_one(s.consumer, Q)
    return (lambda: seed.complete(s.consumer, job, "done")), job.job_id


async def _retry(s: Stores) -> tuple[Action, str | None]:
    await seed.enqueue(s.producer, Q, max_attempts=3)
    job = await seed.claim_one(s.consumer, Q)
    return (lambda: seed.fail(s.consumer, job, delay_ms=60_000)), job.job_id


async def _fail(s: Stores) -> tuple[Action, str | None]:
    await _one(s)
    job = await seed.claim_one(s.consumer, Q)
    return (lambda: seed.fail(s.consumer, job, retryable=False)), job.job_id


async def _requeue(s: Stores) -> tuple[Action, str | None]:
    await _one(s)
    job = await seed.claim_one(s.consumer, Q)
    return (lambda: seed.requeue(s.consumer, job)), job.job_id


async def _renew(s: Stores) -> tuple[Action, str | None]:
    await _one(s)
    job = await seed.claim_one(s.consumer, Q)
    return (lambda: s.consumer.renew([job])), job.job_id


async def _promote(s: Stores) -> tuple[Action, str | None]:
    [job] = await seed.enqueue_scheduled(s.producer, Q)
    await seed.make_due(s.r, s.keys, Q, [job.id])
    return (lambda: s.scheduler.promote_due(Q, 10**13, 10)), job.id


async def _expire(s: Stores) -> tuple[Action, str | None]:
    await _one(s)
    job = await seed.claim_one(s.consumer, Q)
    await seed.complete(s.consumer, job)
    await s.r.zadd(s.keys.queue(Q).expiries, {job.job_id: 1})  # its retention is over
    return (lambda: s.scheduler.expire(Q, 10)), job.job_id


async def _replay(s: Stores) -> tuple[Action, str | None]:
    await _one(s)
    job = await seed.claim_one(s.consumer, Q)
    await seed.fail(s.consumer, job, retryable=False)
    return (lambda: s.producer.replay(job.job_id)), job.job_id


async def _purge(s: Stores) -> tuple[Action, str | None]:
    await _one(s)
    job = await seed.claim_one(s.consumer, Q)
    await seed.complete(s.consumer, job)
    return (lambda: s.producer.purge(Q, "completed")), job.job_id


async def _one(s: Stores) -> None:
    await seed.enqueue(s.producer, Q, max_attempts=1)


OPERATIONS: dict[str, Callable[[Stores], Awaitable[tuple[Action, str | None]]]] = {
    "enqueue": _enqueue,
    "cancel pending": _cancel_pending,
    "cancel scheduled": _cancel_scheduled,
    "cancel running": _cancel_running,
    "claim": _claim,
    "fetch": _fetch,
    "reclaim": _reclaim,
    "complete": _complete,
    "fail, retry": _retry,
    "fail": _fail,
    "requeue": _requeue,
    "renew": _renew,
    "promote": _promote,
    "expire": _expire,
    "replay": _replay,
    "purge": _purge,
}


async def digest(r: Redis, prefix: str) -> str:
    """Every key of the prefix: name, DUMP and whether it has a TTL."""
    names = sorted([name async for name in r.scan_iter(match=f"{prefix}:*", count=1000)])
    h = hashlib.sha256()
    for name in names:
        dumped: Any = await r.dump(name)
        ttl: Any = await r.pttl(name)
        h.update(name + b"\0" + (dumped or b"") + (b"\1" if ttl > 0 else b"\0"))
    return h.hexdigest()


def targets(keys: Keys, job_id: str | None) -> list[str]:
    """The keys an operation on one job of queue Q touches: its queue's 12 keys and the
    job hash."""
    q = keys.queue(Q)
    return [*q.header(), *([q.job(job_id)] if job_id else [])]


async def tampered(r: Redis, keys: Keys, operation: str, target: int) -> str:
    """Prepare `operation`, replace its `target`-th key by a string, run it:
    'ok' (it did not need that key), 'refused' (an error, and nothing was written) or
    'partial' (an error after some of its writes). 'n/a' when there is no such key."""
    s = stores(r, keys)
    action, job_id = await OPERATIONS[operation](s)
    names = targets(keys, job_id)
    if target >= len(names):
        return "n/a"
    key = names[target]
    await r.delete(key)
    await r.set(key, "tampered")
    before = await digest(r, keys.prefix)
    try:
        await action()
    except Exception:
        return "refused" if await digest(r, keys.prefix) == before else "partial"
    return "ok"
