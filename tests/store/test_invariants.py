"""The invariant checker itself: silent on consistent data, and each kind of damage to the
layout is reported. Without these, a checker that always answered [] would pass every
other store test."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from conveyor.ids import new_job_id
from conveyor.states import Status
from conveyor.store.consumer import ConsumerStore
from conveyor.store.keys import Keys, QueueKeys
from conveyor.store.producer import ProducerStore
from tests.helpers import seed
from tests.helpers.invariants import check_invariants

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE


@dataclass
class Jobs:
    """One job in each status, made through the real scripts."""

    scheduled: str
    pending: str
    delivered: str  # pending, read by c1 but not claimed
    running: str
    retrying: str
    completed: str
    canceled: str
    running_entry: str


async def make_jobs(producer: ProducerStore, consumer: ConsumerStore) -> Jobs:
    [scheduled] = await seed.enqueue_scheduled(producer, Q)
    running = await seed.enqueue(producer, Q, max_attempts=3)
    retrying = await seed.enqueue(producer, Q, max_attempts=3)
    completed = await seed.enqueue(producer, Q)
    claimed = await seed.claim_all(consumer, Q)
    by_id = {c.job_id: c for c in claimed}
    await seed.fail(consumer, by_id[retrying.id], delay_ms=3_600_000)
    await seed.complete(consumer, by_id[completed.id])
    canceled = await seed.enqueue(producer, Q)
    await producer.cancel(canceled.id)
    delivered = await seed.enqueue(producer, Q)
    await seed.deliver(consumer, Q)
    pending = await seed.enqueue(producer, Q)
    return Jobs(
        scheduled=scheduled.id,
        pending=pending.id,
        delivered=delivered.id,
        running=running.id,
        retrying=retrying.id,
        completed=completed.id,
        canceled=canceled.id,
        running_entry=by_id[running.id].entry_id,
    )


@pytest.fixture
async def jobs(r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore) -> Jobs:
    made = await make_jobs(producer, consumer)
    for job_id, status in [
        (made.scheduled, Status.SCHEDULED),
        (made.pending, Status.PENDING),
        (made.delivered, Status.PENDING),
        (made.running, Status.RUNNING),
        (made.retrying, Status.RETRYING),
        (made.completed, Status.COMPLETED),
        (made.canceled, Status.CANCELED),
    ]:
        assert await seed.status_of(r, keys, Q, job_id) is status
    return made


async def test_consistent_data_has_no_violations(r: Redis, keys: Keys, jobs: Jobs) -> None:
    assert await check_invariants(r, keys, [Q]) == []
    assert await check_invariants(r, keys, [Q, "never-used"]) == []
    assert await check_invariants(r, keys) == []  # every known queue


async def test_without_queues_every_known_queue_is_checked(
    r: Redis, keys: Keys, jobs: Jobs
) -> None:
    await r.xadd(keys.queue(Q).stream, {"id": new_job_id()})
    assert len(await check_invariants(r, keys)) == 1


async def test_a_delivered_but_unclaimed_job_is_reported_only_on_request(
    r: Redis, keys: Keys, jobs: Jobs
) -> None:
    problems = await check_invariants(r, keys, [Q], allow_delivered_pending=False)
    assert len(problems) == 1
    assert jobs.delivered in problems[0]
    assert "PEL" in problems[0]


Damage = Callable[[Redis, Keys, Jobs], Awaitable[object]]


def q(keys: Keys) -> QueueKeys:
    return keys.queue(Q)


async def expiries_made_a_string(r: Redis, k: Keys, j: Jobs) -> None:
    await r.delete(q(k).expiries)
    await r.set(q(k).expiries, "oops")


DAMAGE: dict[str, tuple[Damage, str]] = {
    "pending job without its stream entry": (
        lambda r, k, j: r.hset(q(k).job(j.pending), "entry", "1-1"),
        "stream entries for it",
    ),
    "a second stream entry for a pending job": (
        lambda r, k, j: r.xadd(q(k).stream, {"id": j.pending}),
        "stream entries for it",
    ),
    "stream entry of a finished job": (
        lambda r, k, j: r.xadd(q(k).stream, {"id": j.completed}),
        "is completed",
    ),
    "stream entry of an unknown job": (
        lambda r, k, j: r.xadd(q(k).stream, {"id": new_job_id()}),
        "is missing",
    ),
    "running job acknowledged": (
        lambda r, k, j: r.xack(q(k).stream, "workers", j.running_entry),
        "not in the group's PEL",
    ),
    "running job's entry deleted but still pending": (
        lambda r, k, j: r.xdel(q(k).stream, j.running_entry),
        "not on the stream any more",
    ),
    "running job owned by another consumer": (
        lambda r, k, j: r.hset(q(k).job(j.running), "worker", "someone-else"),
        "PEL owner c1",
    ),
    "running job without a token": (
        lambda r, k, j: r.hdel(q(k).job(j.running), "token"),
        "lacks token",
    ),
    "scheduled job missing from delayed": (
        lambda r, k, j: r.zrem(q(k).delayed, j.scheduled),
        "not in delayed",
    ),
    "retrying job also on the stream": (
        lambda r, k, j: r.xadd(q(k).stream, {"id": j.retrying}),
        "still on the stream",
    ),
    "delayed member of a pending job": (
        lambda r, k, j: r.zadd(q(k).delayed, {j.pending: 1}),
        "delayed member",
    ),
    "delayed member of an unknown job": (
        lambda r, k, j: r.zadd(q(k).delayed, {new_job_id(): 1}),
        "job is missing",
    ),
    "finished job without a TTL": (
        lambda r, k, j: r.persist(q(k).job(j.completed)),
        "no TTL",
    ),
    "finished job not in expiries": (
        lambda r, k, j: r.zrem(q(k).expiries, j.canceled),
        "not in expiries",
    ),
    "waiting job with a TTL": (
        lambda r, k, j: r.expire(q(k).job(j.pending), 100),
        "has a TTL",
    ),
    "job in two status indexes": (
        lambda r, k, j: r.zadd(q(k).index(Status.FAILED), {j.running: 0}),
        "in status indexes ['failed', 'running']",
    ),
    "job in no status index": (
        lambda r, k, j: r.zrem(q(k).index(Status.SCHEDULED), j.scheduled),
        "in status indexes []",
    ),
    "job missing from idx:all": (
        lambda r, k, j: r.zrem(q(k).all_index, j.retrying),
        "not in idx:all",
    ),
    "index member of a waiting job whose hash is gone": (
        lambda r, k, j: r.delete(q(k).job(j.scheduled)),
        "idx:scheduled member",
    ),
    "status field out of the state machine": (
        lambda r, k, j: r.hset(q(k).job(j.pending), "status", "limbo"),
        "unknown status",
    ),
    "hash of another queue": (
        lambda r, k, j: r.hset(q(k).job(j.pending), "queue", "elsewhere"),
        "field queue",
    ),
    "a queue key of the wrong type": (expiries_made_a_string, "is a string, expected a zset"),
    "idempotency key without a TTL": (
        lambda r, k, j: r.set(q(k).idempotency("k1"), f"{j.pending} {'a' * 64}"),
        "has no TTL",
    ),
    "idempotency key with a malformed value": (
        lambda r, k, j: r.set(q(k).idempotency("k1"), "nonsense", px=60_000),
        "expected '<job_id> <fingerprint>'",
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
async def test_damage_is_reported(r: Redis, keys: Keys, jobs: Jobs, damage: str) -> None:
    do, expected = DAMAGE[damage]
    await do(r, keys, jobs)
    problems = await check_invariants(r, keys, [Q])
    assert problems, f"{damage}: not reported"
    assert any(expected in p for p in problems), problems
    assert all(p.startswith(f"[{Q}] ") or "is a string" in p for p in problems)


async def test_a_finished_job_whose_hash_expired_is_fine_until_expire_runs(
    r: Redis, keys: Keys, jobs: Jobs
) -> None:
    await r.delete(q(keys).job(jobs.completed))
    assert await check_invariants(r, keys, [Q]) == []
