"""Job expiry: a job whose `expires_at` (Redis clock) has passed never starts. The claim
(_claim.lua, from the stream or a takeover) and the promotion (promote.lua, a retry or a
delayed job) end it `expired` instead, and it is retained and purged like any finished job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from conveyor.errors import ValidationError
from conveyor.states import Status
from conveyor.store.consumer import ConsumerStore
from conveyor.store.inspect import queue_stats
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.store.scheduling import SchedulerStore
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants
from tests.helpers.wait import eventually_async

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE
SHORT = 0.05  # expire_after_seconds of a job meant to expire during the test


async def past_expiry(r: Redis, keys: Keys, job_id: str) -> None:
    """Wait until Redis's clock is past the job's expires_at."""
    at = int((await seed.job_hash(r, keys, Q, job_id))["expires_at"])

    async def passed() -> bool:
        return await seed.redis_now_ms(r) > at

    await eventually_async(passed, timeout=5, what="the expiry passed")


async def assert_expired(r: Redis, keys: Keys, job_id: str) -> None:
    stored = await seed.job_hash(r, keys, Q, job_id)
    assert stored["status"] == b"expired"
    assert stored["attempts"] == b"0"  # never started
    assert "token" not in stored
    assert "started_at" not in stored
    assert await seed.index_statuses(r, keys, Q, job_id) == {Status.EXPIRED}
    assert job_id not in await seed.stream_job_ids(r, keys, Q)
    assert await r.pttl(keys.queue(Q).job(job_id)) > 0  # retained like a finished job
    await assert_invariants(r, keys, [Q])


async def test_an_expiry_is_stored_by_redis_clock(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    before = await seed.redis_now_ms(r)
    job = await seed.enqueue(producer, Q, expire_after_seconds=30)
    at = int((await seed.job_hash(r, keys, Q, job.id))["expires_at"])
    assert before + 30_000 <= at <= await seed.redis_now_ms(r) + 30_000
    loaded = await seed.load_job(r, keys, Q, job.id)
    assert loaded is not None
    assert loaded.expires_at == at
    when = datetime(2030, 1, 1, tzinfo=UTC)
    fixed = await seed.enqueue(producer, Q, expires_at=when)
    stored = await seed.job_hash(r, keys, Q, fixed.id)
    assert int(stored["expires_at"]) == int(when.timestamp() * 1000)
    plain = await seed.enqueue(producer, Q)
    assert "expires_at" not in await seed.job_hash(r, keys, Q, plain.id)


async def test_a_job_not_yet_expired_runs(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q, expire_after_seconds=3600)
    await consumer.ensure_groups([Q])
    claimed, _ = await consumer.fetch([Q], count=1, block_ms=0)
    assert [j.job_id for j in claimed.run] == [job.id]


async def test_an_expired_job_on_the_stream_never_starts(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q, expire_after_seconds=SHORT)
    fresh = await seed.enqueue(producer, Q)
    await past_expiry(r, keys, job.id)
    await consumer.ensure_groups([Q])
    claimed, _ = await consumer.fetch([Q], count=10, block_ms=0)
    assert claimed.expired == [job.id]
    assert [j.job_id for j in claimed.run] == [fresh.id]
    assert await seed.pel(r, keys, Q) != {}  # only the running one's entry
    await assert_expired(r, keys, job.id)
    stats = await queue_stats(r, keys, Q)
    assert stats is not None
    assert stats.expired == 1


async def test_an_expired_job_delivered_before_its_claim_never_starts(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q, expire_after_seconds=SHORT)
    deliveries = await seed.deliver(consumer, Q)
    await past_expiry(r, keys, job.id)
    result = await consumer.claim(deliveries)
    assert result.expired == [job.id]
    assert result.run == []
    assert await seed.pel(r, keys, Q) == {}
    await assert_expired(r, keys, job.id)


async def test_a_job_expiring_during_its_retry_backoff_is_not_retried(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    consumer: ConsumerStore,
    scheduler: SchedulerStore,
) -> None:
    job = await seed.enqueue(producer, Q, expire_after_seconds=0.5, max_attempts=3)
    running = await seed.claim_one(consumer, Q)
    assert await seed.fail(consumer, running, delay_ms=60_000) == "retrying"
    await past_expiry(r, keys, job.id)
    await seed.make_due(r, keys, Q, [job.id])
    result = await scheduler.promote_due(Q, await seed.redis_now_ms(r), 10)
    assert (result.promoted, result.expired) == (0, 1)
    stored = await seed.job_hash(r, keys, Q, job.id)
    assert stored["status"] == b"expired"
    assert stored["attempts"] == b"1"
    assert await seed.delayed_score(r, keys, Q, job.id) is None
    assert await seed.stream_job_ids(r, keys, Q) == []
    assert await seed.index_statuses(r, keys, Q, job.id) == {Status.EXPIRED}
    await assert_invariants(r, keys, [Q])


async def test_a_delayed_job_due_after_its_expiry_is_never_promoted(
    r: Redis, keys: Keys, producer: ProducerStore, scheduler: SchedulerStore
) -> None:
    [job] = await seed.enqueue_scheduled(producer, Q, expire_after_seconds=SHORT)
    kept = (await seed.enqueue_scheduled(producer, Q))[0]
    await past_expiry(r, keys, job.id)
    await seed.make_due(r, keys, Q, [job.id, kept.id])
    result = await scheduler.promote_due(Q, await seed.redis_now_ms(r), 10)
    assert (result.promoted, result.expired) == (1, 1)
    assert [j for j, _ in result.jobs] == [kept.id]
    await assert_expired(r, keys, job.id)


async def test_a_reclaimed_attempt_past_its_expiry_is_not_started_again(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q, expire_after_seconds=0.3)
    await seed.claim_one(consumer, Q)  # then its worker stops renewing the lease
    await past_expiry(r, keys, job.id)
    other = seed.consumer_store(r, keys, "c2")
    result = await other.claim(await seed.reclaim(other, Q))
    assert result.expired == [job.id]
    assert result.run == []
    stored = await seed.job_hash(r, keys, Q, job.id)
    assert stored["status"] == b"expired"
    assert stored["lost"] == b"1"
    assert await seed.pel(r, keys, Q) == {}
    await assert_invariants(r, keys, [Q])


async def test_a_running_job_is_not_interrupted_by_its_expiry(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q, expire_after_seconds=SHORT)
    running = await seed.claim_one(consumer, Q)
    await past_expiry(r, keys, job.id)
    assert await seed.complete(consumer, running, "done") == "completed"
    await assert_invariants(r, keys, [Q])


async def test_expired_jobs_are_purged_and_their_retention_ends(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    jobs = [await seed.enqueue(producer, Q, expire_after_seconds=SHORT) for _ in range(2)]
    await past_expiry(r, keys, jobs[-1].id)
    await consumer.ensure_groups([Q])
    claimed, _ = await consumer.fetch([Q], count=10, block_ms=0)
    assert sorted(claimed.expired) == sorted(j.id for j in jobs)
    assert await producer.purge(Q, "expired") == 2
    assert await r.zcard(keys.queue(Q).index(Status.EXPIRED)) == 0
    await assert_invariants(r, keys, [Q])


async def test_a_malformed_expiry_argument_writes_nothing(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    with pytest.raises(ResponseError, match="malformed expiry; nothing was written"):
        await seed.enqueue_with_second_job_arg(r, producer, Q, 10, "+later")
    assert [k async for k in r.scan_iter(match=f"{keys.prefix}:*")] == []


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"expire_after_seconds": 0}, "expire_after_seconds", "greater than 0"),
        ({"expire_after_seconds": "5"}, "expire_after_seconds", "must be a number"),
        (
            {"expire_after_seconds": 5, "expires_at": datetime.now(UTC) + timedelta(hours=1)},
            "expires_at",
            "cannot be combined",
        ),
        ({"expires_at": datetime(2030, 1, 1)}, "expires_at", "timezone"),
    ],
)
def test_a_bad_expiry_is_refused_naming_its_field(
    options: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        seed.spec(Q, **options)
    assert exc.value.field == field
    assert message in str(exc.value)


async def test_an_expiry_already_past_ends_the_job_at_its_claim(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    """However far in the past (before 1970 is stored as the epoch), it never starts."""
    old = await seed.enqueue(producer, Q, expires_at=datetime(1969, 7, 20, tzinfo=UTC))
    assert (await seed.job_hash(r, keys, Q, old.id))["expires_at"] == b"0"
    await consumer.ensure_groups([Q])
    claimed, _ = await consumer.fetch([Q], count=10, block_ms=0)
    assert (claimed.expired, claimed.run) == ([old.id], [])
    await assert_expired(r, keys, old.id)
