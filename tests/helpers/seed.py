"""Domain-speaking helpers over the real stores: put jobs into a given state with the same
scripts production uses, and read back what Redis holds.

Store tests, end-to-end tests and fault tests share these, so "a running job" means the
same thing everywhere: enqueued by the producer, read from the stream, claimed by a consumer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from conveyor import codec
from conveyor.ids import new_job_id
from conveyor.job import Job, Outcome
from conveyor.jobspec import build
from conveyor.states import Status
from conveyor.store.consumer import (
    ClaimedJob,
    ClaimResult,
    Completion,
    ConsumerStore,
    Delivery,
    Failure,
)
from conveyor.store.keys import GROUP, Keys
from conveyor.store.producer import ProducerStore
from conveyor.store.scheduling import SchedulerStore
from conveyor.values import NewJob

DEFAULT_QUEUE = "default"
DEFAULT_TYPE = "echo"
FAR_FUTURE_S = 3600.0  # a delay that never comes due during a test


# -- building stores ------------------------------------------------------------------------


def producer_store(r: Redis, keys: Keys, *, result_ttl_seconds: int = 600) -> ProducerStore:
    return ProducerStore(r, keys, result_ttl_seconds=result_ttl_seconds)


def consumer_store(
    r: Redis,
    keys: Keys,
    name: str = "c1",
    *,
    max_deliveries: int = 5,
    result_ttl_seconds: int = 600,
) -> ConsumerStore:
    return ConsumerStore(
        r, keys, name, max_deliveries=max_deliveries, result_ttl_seconds=result_ttl_seconds
    )


def scheduler_store(r: Redis, keys: Keys) -> SchedulerStore:
    return SchedulerStore(r, keys)


# -- creating jobs --------------------------------------------------------------------------


def spec(
    queue: str = DEFAULT_QUEUE,
    type: str = DEFAULT_TYPE,
    payload: codec.JsonValue = None,
    **kw: Any,
) -> NewJob:
    """A validated NewJob, exactly as the client and the API build them."""
    return build(type, payload, queue=queue, **kw)


async def enqueue(
    producer: ProducerStore,
    queue: str = DEFAULT_QUEUE,
    type: str = DEFAULT_TYPE,
    payload: codec.JsonValue = None,
    **kw: Any,
) -> Job:
    """One new job (pending, or scheduled when given delay_seconds / run_at)."""
    [job] = await producer.enqueue([spec(queue, type, payload, **kw)])
    return job


async def enqueue_many(
    producer: ProducerStore,
    n: int,
    queue: str = DEFAULT_QUEUE,
    type: str = DEFAULT_TYPE,
    **kw: Any,
) -> list[Job]:
    """`n` new jobs in one call; payload i is ``{"i": i}``."""
    return await producer.enqueue([spec(queue, type, {"i": i}, **kw) for i in range(n)])


async def enqueue_scheduled(
    producer: ProducerStore, queue: str = DEFAULT_QUEUE, n: int = 1, **kw: Any
) -> list[Job]:
    """`n` jobs due far in the future (see `make_due` to bring them forward)."""
    kw.setdefault("delay_seconds", FAR_FUTURE_S)
    return await enqueue_many(producer, n, queue, **kw)


async def make_due(r: Redis, keys: Keys, queue: str, job_ids: Sequence[str]) -> None:
    """Move delayed jobs' due time to the epoch so the next promote takes them."""
    if job_ids:
        await r.zadd(keys.queue(queue).delayed, dict.fromkeys(job_ids, 1), xx=True)


# -- taking jobs ----------------------------------------------------------------------------


async def deliver(
    consumer: ConsumerStore, queue: str = DEFAULT_QUEUE, count: int = 1
) -> list[Delivery]:
    """Read up to `count` new entries for `consumer` (XREADGROUP), without claiming them."""
    await consumer.ensure_groups([queue])
    return await consumer.read([queue], count=count, block_ms=1)


async def claim(consumer: ConsumerStore, deliveries: Sequence[Delivery]) -> ClaimResult:
    return await consumer.claim(deliveries)


async def claim_one(consumer: ConsumerStore, queue: str = DEFAULT_QUEUE) -> ClaimedJob:
    """Read one entry and start its attempt; fails unless exactly one job is now running."""
    deliveries = await deliver(consumer, queue, 1)
    assert len(deliveries) == 1, f"expected one delivery on {queue}, got {deliveries}"
    result = await consumer.claim(deliveries)
    assert len(result.run) == 1, f"expected one claimed job, got {result}"
    return result.run[0]


async def claim_all(
    consumer: ConsumerStore, queue: str = DEFAULT_QUEUE, count: int = 1000
) -> list[ClaimedJob]:
    """Read and claim every waiting entry (up to `count`)."""
    deliveries = await deliver(consumer, queue, count)
    if not deliveries:
        return []
    return (await consumer.claim(deliveries)).run


async def reclaim(
    consumer: ConsumerStore,
    queue: str = DEFAULT_QUEUE,
    *,
    count: int = 100,
    min_idle_ms: int = 1,
    timeout: float = 5.0,  # noqa: ASYNC109 - a polling deadline
) -> list[Delivery]:
    """Take over (XAUTOCLAIM) entries idle at least `min_idle_ms`, polling until some idle
    entry shows up or `timeout` passes. Returns the deliveries, not yet claimed."""
    deadline = time.monotonic() + timeout
    while True:
        consumer._autoclaim_cursor.pop(queue, None)  # scan from the start every time
        got = await consumer.autoclaim(queue, min_idle_ms, count)
        if got or time.monotonic() > deadline:
            return got
        await asyncio.sleep(max(min_idle_ms / 1000, 0.002))


# -- finishing attempts ---------------------------------------------------------------------


async def complete(consumer: ConsumerStore, job: ClaimedJob, result: codec.JsonValue = None) -> str:
    outcome = await consumer.finish(
        [Completion(job, codec.encode(result, field="result"))],
        schedule_channel=consumer.keys.schedule_channel,
    )
    return outcome[job.job_id]


async def fail(
    consumer: ConsumerStore,
    job: ClaimedJob,
    *,
    error: str = "RuntimeError: boom",
    retryable: bool = True,
    delay_ms: int = 0,
    outcome: str = Outcome.FAILED,
    max_attempts: int | None = None,
) -> str:
    failure = Failure(job, error, outcome, retryable, delay_ms, max_attempts)
    result = await consumer.finish(
        failures=[failure], schedule_channel=consumer.keys.schedule_channel
    )
    return result[job.job_id]


async def requeue(consumer: ConsumerStore, job: ClaimedJob) -> str:
    result = await consumer.finish(requeues=[job], schedule_channel=consumer.keys.schedule_channel)
    return result[job.job_id]


# -- reading Redis back ---------------------------------------------------------------------


async def job_hash(r: Redis, keys: Keys, queue: str, job_id: str) -> dict[str, bytes]:
    """The raw job hash, field names decoded; {} when it does not exist."""
    raw: Any = await r.hgetall(keys.queue(queue).job(job_id))
    return {k.decode(): v for k, v in raw.items()}


async def load_job(r: Redis, keys: Keys, queue: str, job_id: str) -> Job | None:
    raw: Any = await r.hgetall(keys.queue(queue).job(job_id))
    return Job.from_hash(raw) if raw else None


async def status_of(r: Redis, keys: Keys, queue: str, job_id: str) -> Status | None:
    value: Any = await r.hget(keys.queue(queue).job(job_id), "status")
    return None if value is None else Status(value.decode())


async def stream_job_ids(r: Redis, keys: Keys, queue: str) -> list[str]:
    """The job id of every entry on the queue's stream, oldest first."""
    entries: Any = await r.xrange(keys.queue(queue).stream)
    return [fields[b"id"].decode() for _, fields in entries]


async def pel(r: Redis, keys: Keys, queue: str) -> dict[str, str]:
    """The group's pending entries: entry id -> consumer. {} without a group."""
    stream = keys.queue(queue).stream
    if not await r.exists(stream):
        return {}
    groups: Any = await r.xinfo_groups(stream)
    if not any(_text(g["name"]) == GROUP for g in groups):
        return {}
    rows: Any = await r.xpending_range(stream, GROUP, "-", "+", 100_000)
    return {_text(row["message_id"]): _text(row["consumer"]) for row in rows}


async def delivery_count(r: Redis, keys: Keys, queue: str, entry_id: str) -> int | None:
    """How often the group delivered this entry (Redis's own counter), None if not pending."""
    rows: Any = await r.xpending_range(keys.queue(queue).stream, GROUP, entry_id, entry_id, 1)
    return int(rows[0]["times_delivered"]) if rows else None


async def delayed_score(r: Redis, keys: Keys, queue: str, job_id: str) -> float | None:
    score: Any = await r.zscore(keys.queue(queue).delayed, job_id)
    return None if score is None else float(score)


async def index_statuses(r: Redis, keys: Keys, queue: str, job_id: str) -> set[Status]:
    """The status indexes that hold `job_id`."""
    q = keys.queue(queue)
    async with r.pipeline(transaction=False) as pipe:
        for s in Status:
            pipe.zscore(q.index(s), job_id)
        scores = await pipe.execute()
    return {s for s, score in zip(Status, scores, strict=True) if score is not None}


async def in_all_index(r: Redis, keys: Keys, queue: str, job_id: str) -> bool:
    return await r.zscore(keys.queue(queue).all_index, job_id) is not None


async def redis_now_ms(r: Redis) -> int:
    seconds, micros = await r.time()
    return int(seconds) * 1000 + int(micros) // 1000


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def enqueue_with_second_job_arg(
    r: Redis, producer: ProducerStore, queue: str, position: int, value: str
) -> Any:
    """Runs enqueue.lua for two new jobs of `queue` with the second job's per-job argument
    `position` (1-based, see the script's ARGV) replaced by `value`; its reply."""
    jobs = [NewJob(new_job_id(), DEFAULT_TYPE, queue, codec.encode(None)) for _ in range(2)]
    call = producer._enqueue_call(producer._chunks(jobs)[0], {}, 1)
    one = producer._enqueue_call(producer._chunks(jobs[:1])[0], {}, 1)
    per_job = len(call.args) - len(one.args)  # enqueue.lua's PER_JOB
    args = list(call.args)
    args[5 + per_job + position - 1] = value
    return await call.script(r, call.keys, args)
