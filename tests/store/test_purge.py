"""purge.lua through ProducerStore.purge: finished jobs of one queue and status are deleted
before their retention ends, in bounded batches; nothing else is touched."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from conveyor.errors import ValidationError
from conveyor.states import Status
from conveyor.store.consumer import ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE
OTHER = "other"


async def finish(
    consumer: ConsumerStore, queue: str, *, completed: int = 0, failed: int = 0
) -> tuple[list[str], list[str]]:
    """Run `completed + failed` pending jobs of `queue` to the end; their ids."""
    claimed = await seed.claim_all(consumer, queue, count=completed + failed)
    assert len(claimed) == completed + failed
    for c in claimed[:completed]:
        await seed.complete(consumer, c)
    for c in claimed[completed:]:
        await seed.fail(consumer, c, retryable=False)
    ids = [c.job_id for c in claimed]
    return ids[:completed], ids[completed:]


async def test_purge_deletes_only_the_jobs_in_that_status(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    await seed.enqueue_many(producer, 5, Q)
    done, failed = await finish(consumer, Q, completed=2, failed=3)
    canceled = await seed.enqueue(producer, Q)
    await producer.cancel(canceled.id)
    waiting = await seed.enqueue(producer, Q)
    [later] = await seed.enqueue_scheduled(producer, Q)
    await seed.enqueue_many(producer, 2, OTHER)
    _, other_failed = await finish(consumer, OTHER, failed=2)

    assert await producer.purge(Q, "failed") == 3

    q = keys.queue(Q)
    for job_id in failed:
        assert not await r.exists(q.job(job_id))
        assert await seed.index_statuses(r, keys, Q, job_id) == set()
        assert not await seed.in_all_index(r, keys, Q, job_id)
        assert await r.zscore(q.expiries, job_id) is None
    for job_id in done:
        assert await seed.status_of(r, keys, Q, job_id) is Status.COMPLETED
    assert await seed.status_of(r, keys, Q, canceled.id) is Status.CANCELED
    assert await seed.status_of(r, keys, Q, waiting.id) is Status.PENDING
    assert await seed.status_of(r, keys, Q, later.id) is Status.SCHEDULED
    for job_id in other_failed:  # another queue's failed jobs stay
        assert await seed.status_of(r, keys, OTHER, job_id) is Status.FAILED
    await assert_invariants(r, keys, [Q, OTHER])

    assert await producer.purge(Q, Status.COMPLETED) == 2
    assert await producer.purge(Q, "canceled") == 1
    assert await producer.purge(Q, "failed") == 0  # nothing left: a no-op
    assert await r.zcard(q.all_index) == 2  # the pending and the scheduled job
    await assert_invariants(r, keys, [Q, OTHER])


async def test_purge_works_in_batches_until_none_is_left(
    r: Redis, keys: Keys, producer: ProducerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = await seed.enqueue_many(producer, 7, Q)
    for job in jobs:
        await producer.cancel(job.id)
    calls: list[int] = []
    script = producer.scripts.purge

    class Counting:
        async def __call__(self, redis: Redis, script_keys: list[str], args: list[str]) -> int:
            calls.append(len(args) - 1)
            result: int = await script(redis, script_keys, args)
            return result

    monkeypatch.setattr(producer.scripts, "purge", Counting())

    assert await producer.purge(Q, "canceled", batch=3) == 7
    assert calls == [3, 3, 1]
    assert await r.zcard(keys.queue(Q).all_index) == 0
    await assert_invariants(r, keys, [Q])


@pytest.mark.parametrize("status", ["pending", "running", "scheduled", "retrying", "nope"])
async def test_only_finished_statuses_may_be_purged(
    r: Redis, keys: Keys, producer: ProducerStore, status: str
) -> None:
    job = await seed.enqueue(producer, Q)
    with pytest.raises(ValidationError) as exc:
        await producer.purge(Q, status)
    assert exc.value.field == "status"
    assert await seed.status_of(r, keys, Q, job.id) is Status.PENDING


async def test_the_script_refuses_an_unfinished_status(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    """Called directly with a pending job, the script writes nothing."""
    job = await seed.enqueue(producer, Q)
    q = keys.queue(Q)
    with pytest.raises(Exception, match="not a finished status"):
        await producer.scripts.purge(r, [*q.header(), q.job(job.id)], ["pending", job.id])
    assert await seed.status_of(r, keys, Q, job.id) is Status.PENDING
    await assert_invariants(r, keys, [Q])


async def test_a_job_whose_status_changed_since_its_id_was_read_stays(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    """The caller read the id from idx:failed, then the job was replayed: the script sees
    it pending now and leaves it."""
    await seed.enqueue_many(producer, 2, Q)
    _, [replayed, purged] = await finish(consumer, Q, failed=2)
    await producer.replay(replayed)
    q = keys.queue(Q)
    removed = await producer.scripts.purge(
        r, [*q.header(), q.job(replayed), q.job(purged)], ["failed", replayed, purged]
    )
    assert removed == 1
    assert await seed.status_of(r, keys, Q, replayed) is Status.PENDING
    assert await seed.in_all_index(r, keys, Q, replayed)
    assert not await r.exists(q.job(purged))
    await assert_invariants(r, keys, [Q])


async def test_index_entries_of_an_expired_job_are_dropped_too(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    """A finished job whose hash expired but whose index entries wait for expire.lua."""
    jobs = await seed.enqueue_many(producer, 2, Q)
    for job in jobs:
        await producer.cancel(job.id)
    q = keys.queue(Q)
    await r.delete(q.job(jobs[0].id))  # as if its retention had ended
    await assert_invariants(r, keys, [Q])

    assert await producer.purge(Q, "canceled") == 2
    for key in (q.all_index, q.index(Status.CANCELED), q.expiries):
        assert await r.zcard(key) == 0
    await assert_invariants(r, keys, [Q])


async def test_a_missing_job_not_in_the_index_is_left_alone(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    """An id passed by mistake (no hash, not in idx:<status>) changes nothing."""
    job = await seed.enqueue(producer, Q)
    q = keys.queue(Q)
    assert (
        await producer.scripts.purge(r, [*q.header(), q.job(job.id + "X")], ["failed", job.id]) == 0
    )
    assert await seed.in_all_index(r, keys, Q, job.id)
    await assert_invariants(r, keys, [Q])


async def test_limit_must_be_positive(producer: ProducerStore) -> None:
    with pytest.raises(ValidationError):
        await producer.purge(Q, "failed", batch=0)
