"""claim.lua records the effective max_attempts of each attempt it starts (the job's own,
else its handler's, else the worker's default), so a reader of the job sees the limit the
worker judges it by; the job's own value is never overwritten."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from conveyor.store.consumer import AttemptLimits, ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.worker.retry import effective_max_attempts
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE
LIMITS = AttemptLimits(default=7, by_type={"report.build": 2})


def limited_consumer(r: Redis, keys: Keys, name: str, limits: AttemptLimits) -> ConsumerStore:
    return ConsumerStore(
        r, keys, name, max_deliveries=5, result_ttl_seconds=600, attempt_limits=limits
    )


@pytest.mark.parametrize(
    ("job_type", "own", "expected"),
    [("report.build", None, 2), ("echo", None, 7), ("report.build", 4, 4), ("echo", 9, 9)],
)
async def test_a_claim_records_the_limit_the_worker_applies(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    job_type: str,
    own: int | None,
    expected: int,
) -> None:
    job = await seed.enqueue(producer, Q, job_type, max_attempts=own)
    assert (await producer.get(job.id)).max_attempts == own  # before any claim: its own

    claimed = await seed.claim_one(limited_consumer(r, keys, "c1", LIMITS), Q)

    # The same order as the worker's own decision (worker/retry.py).
    handler = LIMITS.by_type.get(job_type)
    assert effective_max_attempts(claimed.max_attempts, handler, LIMITS.default) == expected
    assert claimed.max_attempts == own  # the claim row still carries the job's own value
    h = await seed.job_hash(r, keys, Q, job.id)
    assert h["effective_max_attempts"] == str(expected).encode()
    assert (h.get("max_attempts"), h["status"]) == (
        None if own is None else str(own).encode(),
        b"running",
    )
    assert (await producer.get(job.id)).max_attempts == expected
    await assert_invariants(r, keys, [Q])


async def test_a_consumer_without_limits_records_none(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q)
    await seed.claim_one(consumer, Q)
    assert "effective_max_attempts" not in await seed.job_hash(r, keys, Q, job.id)
    assert (await producer.get(job.id)).max_attempts is None


async def test_each_attempt_records_the_limit_of_the_worker_that_started_it(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    """A job taken over by a worker configured otherwise shows that worker's limit, and a
    claim sent again after a lost reply changes nothing."""
    first = limited_consumer(r, keys, "c1", LIMITS)
    second = limited_consumer(r, keys, "c2", AttemptLimits(default=3))
    job = await seed.enqueue(producer, Q, "report.build")
    [delivery] = await seed.deliver(first, Q)
    [claimed] = (await first.claim([delivery])).run
    resent = await first.claim([delivery])
    assert [c.token for c in resent.run] == [claimed.token]
    assert (await seed.job_hash(r, keys, Q, job.id))["effective_max_attempts"] == b"2"

    taken = await seed.reclaim(second, Q)
    [again] = (await second.claim(taken)).run

    assert again.attempt == 2
    h = await seed.job_hash(r, keys, Q, job.id)
    assert (h["effective_max_attempts"], h["worker"]) == (b"3", b"c2")
    assert (await producer.get(job.id)).max_attempts == 3
    await assert_invariants(r, keys, [Q])


async def test_a_consumer_without_limits_leaves_a_jobs_own_limit_alone(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q, max_attempts=4)
    await seed.claim_one(consumer, Q)
    h = await seed.job_hash(r, keys, Q, job.id)
    assert (h["max_attempts"], "effective_max_attempts" in h) == (b"4", False)
    assert (await producer.get(job.id)).max_attempts == 4
