"""replay.lua through ProducerStore.replay: failed and canceled jobs run again, every other
status is refused with nothing written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis

from conveyor.errors import InvalidTransition, JobNotFound
from conveyor.ids import new_job_id
from conveyor.job import Outcome, parse_history
from conveyor.states import Status
from conveyor.store.consumer import ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE

Make = Callable[[ProducerStore, ConsumerStore], Awaitable[str]]


async def failed(producer: ProducerStore, consumer: ConsumerStore) -> str:
    job = await seed.enqueue(producer, Q, max_attempts=1)
    claimed = await seed.claim_one(consumer, Q)
    assert await seed.fail(consumer, claimed, error="ValueError: bad") == "failed"
    return job.id


async def failed_after_retries(producer: ProducerStore, consumer: ConsumerStore) -> str:
    job = await seed.enqueue(producer, Q, max_attempts=2)
    claimed = await seed.claim_one(consumer, Q)
    assert await seed.fail(consumer, claimed, error="E: one") == "retrying"
    await seed.make_due(producer.redis, producer.keys, Q, [job.id])
    scheduler = seed.scheduler_store(producer.redis, producer.keys)
    assert (await scheduler.promote_due(Q, await seed.redis_now_ms(producer.redis), 10)).promoted
    claimed = await seed.claim_one(consumer, Q)
    assert await seed.fail(consumer, claimed, error="E: two") == "failed"
    return job.id


async def canceled_waiting(producer: ProducerStore, consumer: ConsumerStore) -> str:
    job = await seed.enqueue(producer, Q)
    await producer.cancel(job.id)
    return job.id


async def canceled_scheduled(producer: ProducerStore, consumer: ConsumerStore) -> str:
    [job] = await seed.enqueue_scheduled(producer, Q)
    await producer.cancel(job.id)
    return job.id


async def canceled_while_running(producer: ProducerStore, consumer: ConsumerStore) -> str:
    job = await seed.enqueue(producer, Q)
    claimed = await seed.claim_one(consumer, Q)
    await producer.cancel(job.id)  # requested
    status = await seed.fail(consumer, claimed, outcome=Outcome.CANCELED, error="canceled")
    assert status == "canceled"
    return job.id


REPLAYABLE: dict[str, Make] = {
    "failed": failed,
    "failed after retries": failed_after_retries,
    "canceled while waiting": canceled_waiting,
    "canceled while scheduled": canceled_scheduled,
    "canceled while running": canceled_while_running,
}

GONE_FIELDS = {"cancel_requested", "finished_at", "token", "worker", "started_at", "next_run_at"}


@pytest.mark.parametrize("case", list(REPLAYABLE))
async def test_a_failed_or_canceled_job_runs_again(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, case: str
) -> None:
    job_id = await REPLAYABLE[case](producer, consumer)
    q = keys.queue(Q)
    before = await seed.job_hash(r, keys, Q, job_id)
    assert await r.pttl(q.job(job_id)) > 0
    assert await r.zscore(q.expiries, job_id) is not None

    job = await producer.replay(job_id)

    h = await seed.job_hash(r, keys, Q, job_id)
    assert job.status is Status.PENDING
    assert job == await seed.load_job(r, keys, Q, job_id)
    assert (h["attempts"], h["lost"]) == (b"0", b"0")
    assert not GONE_FIELDS & set(h)
    assert h.get("history") == before.get("history")
    assert h.get("last_error") == before.get("last_error")
    assert h["deliveries"] == before["deliveries"]
    assert h["entry"] != before.get("entry")
    assert int(h["updated_at"]) >= int(before["updated_at"])
    assert await r.pttl(q.job(job_id)) == -1
    assert await r.zscore(q.expiries, job_id) is None
    assert await seed.index_statuses(r, keys, Q, job_id) == {Status.PENDING}
    assert await seed.stream_job_ids(r, keys, Q) == [job_id]
    await assert_invariants(r, keys, [Q], allow_delivered_pending=False)

    claimed = await seed.claim_one(consumer, Q)
    assert claimed.job_id == job_id
    assert (await producer.get(job_id)).attempts == 1
    assert await seed.complete(consumer, claimed, {"ok": True}) == "completed"
    done = await producer.get(job_id)
    assert done.status is Status.COMPLETED
    assert done.result == {"ok": True}
    assert len(done.history) == len(parse_history(before.get("history"))) + 1
    await assert_invariants(r, keys, [Q])


async def running(producer: ProducerStore, consumer: ConsumerStore) -> str:
    job = await seed.enqueue(producer, Q)
    await seed.claim_one(consumer, Q)
    return job.id


async def pending(producer: ProducerStore, consumer: ConsumerStore) -> str:
    return (await seed.enqueue(producer, Q)).id


async def scheduled(producer: ProducerStore, consumer: ConsumerStore) -> str:
    return (await seed.enqueue_scheduled(producer, Q))[0].id


async def retrying(producer: ProducerStore, consumer: ConsumerStore) -> str:
    job = await seed.enqueue(producer, Q, max_attempts=3)
    claimed = await seed.claim_one(consumer, Q)
    await seed.fail(consumer, claimed, delay_ms=3_600_000)
    return job.id


async def completed(producer: ProducerStore, consumer: ConsumerStore) -> str:
    job = await seed.enqueue(producer, Q)
    await seed.complete(consumer, await seed.claim_one(consumer, Q))
    return job.id


REFUSED: dict[Status, Make] = {
    Status.PENDING: pending,
    Status.RUNNING: running,
    Status.SCHEDULED: scheduled,
    Status.RETRYING: retrying,
    Status.COMPLETED: completed,
}


@pytest.mark.parametrize("status", list(REFUSED), ids=[s.value for s in REFUSED])
async def test_other_statuses_are_refused_with_nothing_written(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, status: Status
) -> None:
    job_id = await REFUSED[status](producer, consumer)
    q = keys.queue(Q)
    before = {k: await r.dump(k) for k in [*q.header(), q.job(job_id)]}
    with pytest.raises(InvalidTransition) as exc:
        await producer.replay(job_id)
    assert (exc.value.current, exc.value.event) == (status.value, "replay")
    assert {k: await r.dump(k) for k in [*q.header(), q.job(job_id)]} == before
    await assert_invariants(r, keys, [Q])


async def test_an_unknown_job_is_not_found(r: Redis, keys: Keys, producer: ProducerStore) -> None:
    await seed.enqueue(producer, Q)
    with pytest.raises(JobNotFound):
        await producer.replay(new_job_id())
    await assert_invariants(r, keys, [Q])
