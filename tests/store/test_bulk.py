"""Bulk operator actions (shared/store/bulk.py): retry or purge the finished jobs of a
queue, at most `limit` per call, through the single-job scripts."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from conveyor.errors import ValidationError
from conveyor.states import Status
from conveyor.store import bulk
from conveyor.store.consumer import ConsumerStore, Failure
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE


async def failed_jobs(producer: ProducerStore, consumer: ConsumerStore, n: int) -> list[str]:
    """`n` jobs of Q that failed for good, oldest first."""
    jobs = await seed.enqueue_many(producer, n, Q)
    claimed = await seed.claim_all(consumer, Q, count=n)
    failures = [Failure(c, "RuntimeError: boom", "failed", False, 0, None) for c in claimed]
    outcome = await consumer.finish(failures=failures, schedule_channel="")
    assert set(outcome.values()) == {"failed"}
    return [j.id for j in jobs]


async def test_replay_failed_runs_the_oldest_failed_jobs_again_up_to_the_limit(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, monkeypatch
) -> None:
    monkeypatch.setattr(bulk, "BATCH", 3)  # several round trips within one call
    ids = await failed_jobs(producer, consumer, 8)
    completed = await seed.enqueue(producer, Q)
    await seed.complete(consumer, await seed.claim_one(consumer, Q))

    result = await bulk.replay_failed(r, keys, Q, limit=5)

    assert (result.done, result.remaining) == (5, 3)
    statuses = [await seed.status_of(r, keys, Q, i) for i in ids]
    assert statuses == [Status.PENDING] * 5 + [Status.FAILED] * 3
    assert await seed.status_of(r, keys, Q, completed.id) is Status.COMPLETED
    assert result.to_json("retried") == {"retried": 5, "remaining": 3}
    await assert_invariants(r, keys, [Q])

    again = await bulk.replay_failed(r, keys, Q, limit=100)
    assert (again.done, again.remaining) == (3, 0)
    assert (await bulk.replay_failed(r, keys, Q, limit=100)).done == 0
    await assert_invariants(r, keys, [Q])


async def test_purge_deletes_up_to_the_limit_of_one_finished_status(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, monkeypatch
) -> None:
    monkeypatch.setattr(bulk, "BATCH", 2)
    ids = await failed_jobs(producer, consumer, 5)
    pending = await seed.enqueue(producer, Q)

    result = await bulk.purge(r, keys, Q, Status.FAILED, limit=4)

    assert (result.done, result.remaining) == (4, 1)
    assert [await seed.status_of(r, keys, Q, i) for i in ids] == [None] * 4 + [Status.FAILED]
    assert await seed.status_of(r, keys, Q, pending.id) is Status.PENDING
    await assert_invariants(r, keys, [Q])
    with pytest.raises(ValidationError, match="only finished jobs"):
        await bulk.purge(r, keys, Q, Status.PENDING, limit=4)
