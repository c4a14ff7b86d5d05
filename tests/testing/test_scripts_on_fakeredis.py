"""Every production transition script runs on fakeredis, through the real store classes.

conveyor.testing is only as faithful as fakeredis's Lua: each script is run here once
on the path a deployment takes, and its effect checked. A new script must be added below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import fakeredis
import pytest
from fakeredis.aioredis import FakeRedis
from prometheus_client import CollectorRegistry

from conveyor.client import Client
from conveyor.errors import QueueLimitReached
from conveyor.job import Outcome
from conveyor.metrics import SchedulerMetrics
from conveyor.schedules import parse_schedule
from conveyor.states import Status
from conveyor.store.consumer import ClaimedJob, ClaimResult, Completion, ConsumerStore, Failure
from conveyor.store.keys import Keys
from conveyor.store.limits import Limit, LimitsStore
from conveyor.store.registry import QueueRegistry
from conveyor.store.replies import Finished
from conveyor.store.schedules import ScheduleStore
from conveyor.store.scheduling import SchedulerStore
from conveyor.store.scripts import scripts
from conveyor.worker.periodic import Periodic

pytestmark = pytest.mark.anyio

QUEUE = "default"


class Stores:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.keys = Keys("fk")
        self.client = Client(redis, key_prefix="fk")
        self.consumer = ConsumerStore(
            redis, self.keys, "w1", max_deliveries=5, result_ttl_seconds=60
        )
        self.scheduler = SchedulerStore(redis, self.keys)

    async def running(self, job_type: str = "t.x") -> ClaimedJob:
        """A job enqueued, read and claimed: its attempt, as a worker holds it."""
        await self.client.enqueue(job_type, {"n": 1})
        await self.consumer.ensure_groups([QUEUE])
        deliveries = await self.consumer.read([QUEUE], count=1, block_ms=1)
        claimed = await self.consumer.claim(deliveries)
        assert len(claimed.run) == 1
        return claimed.run[0]

    async def finish(self, **items: list[object]) -> dict[str, Finished]:
        return await self.consumer.finish(
            **items,  # type: ignore[arg-type]
            schedule_channel=self.keys.schedule_channel,
        )


@pytest.fixture
async def stores() -> AsyncIterator[Stores]:
    redis = FakeRedis(server=fakeredis.FakeServer())
    yield Stores(redis)
    await redis.aclose()


async def check_enqueue(s: Stores) -> None:
    job = await s.client.enqueue("t.x", {"n": 1}, correlation_id="c-1")
    later = await s.client.enqueue("t.x", None, delay_seconds=60)
    assert (await s.client.get(job.id)).status is Status.PENDING
    assert (await s.client.get(later.id)).status is Status.SCHEDULED
    unique = await s.client.enqueue("t.x", 1, unique_key="u")
    assert (await s.client.enqueue("t.x", 2, unique_key="u")).id == unique.id


async def check_claim(s: Stores) -> None:
    job = await s.running()
    assert job.attempt == 1
    assert job.token
    assert (await s.client.get(job.job_id)).status is Status.RUNNING


async def check_complete(s: Stores) -> None:
    job = await s.running()
    assert await s.finish(completions=[Completion(job, b"\x2a")]) == {job.job_id: "completed"}
    done = await s.client.get(job.job_id)
    assert (done.status, done.result) == (Status.COMPLETED, 42)


async def check_fail(s: Stores) -> None:
    job = await s.running()
    failure = Failure(job, "boom", Outcome.FAILED, True, 60_000, max_attempts=3)
    assert await s.finish(failures=[failure]) == {job.job_id: "retrying"}
    again = await s.running("t.y")
    final = Failure(again, "no", Outcome.FAILED, retryable=False, delay_ms=0)
    assert await s.finish(failures=[final]) == {again.job_id: "failed"}
    assert (await s.client.get(again.job_id)).last_error == "no"


async def check_requeue(s: Stores) -> None:
    job = await s.running()
    assert await s.finish(requeues=[job]) == {job.job_id: "pending"}
    back = await s.client.get(job.job_id)
    assert back.status is Status.PENDING
    assert back.history[-1].outcome == Outcome.RETURNED


async def check_cancel(s: Stores) -> None:
    waiting = await s.client.enqueue("t.x", None)
    assert (await s.client.cancel(waiting.id))[1].status is Status.CANCELED
    job = await s.running()
    outcome, _ = await s.client.cancel(job.job_id)
    assert outcome.value == "requested"


async def check_renew(s: Stores) -> None:
    job = await s.running()
    assert await s.consumer.renew([job]) == {job.job_id: "ok"}
    await s.client.cancel(job.job_id)
    assert await s.consumer.renew([job]) == {job.job_id: "cancel"}


async def check_replay(s: Stores) -> None:
    job = await s.client.enqueue("t.x", None)
    await s.client.cancel(job.id)
    assert (await s.client.replay(job.id)).status is Status.PENDING


async def check_promote(s: Stores) -> None:
    job = await s.client.enqueue("t.x", None, delay_seconds=60)
    result = await s.scheduler.promote_due(QUEUE, 2**50, 10)
    assert result.promoted == 0  # not due by Redis TIME, whatever the caller's estimate
    assert result.next_due_ms is not None
    await s.redis.zadd(s.keys.queue(QUEUE).delayed, {job.id: 0}, xx=True)
    assert (await s.scheduler.promote_due(QUEUE, 2**50, 10)).jobs == ((job.id, None),)
    assert (await s.client.get(job.id)).status is Status.PENDING


async def check_limits_set(s: Stores) -> None:
    """A concurrency limit of 1 holds the second job; ending the first starts it."""
    limits = LimitsStore(s.redis, s.keys)
    assert await limits.set(QUEUE, "queue", Limit(max_running=1, max_per_second=1000.0))
    first = await s.running()
    second = await s.client.enqueue("t.x", None)
    result, _ = await s.consumer.fetch([QUEUE], count=5, block_ms=0)
    assert result.held == [(second.id, "queue")]
    await s.finish(completions=[Completion(first, b"\xc0")])
    result, _ = await s.consumer.fetch([QUEUE], count=5, block_ms=0)
    assert [j.job_id for j in result.run] == [second.id]
    assert (await s.consumer.renew(result.run)) == {second.id: "ok"}


async def check_limits_delete(s: Stores) -> None:
    limits = LimitsStore(s.redis, s.keys)
    await limits.set(QUEUE, "queue", Limit(max_running=1))
    await s.running()
    held = await s.client.enqueue("t.x", None)
    await s.consumer.fetch([QUEUE], count=5, block_ms=0)
    assert await limits.delete(QUEUE, "queue")
    result, _ = await s.consumer.fetch([QUEUE], count=5, block_ms=0)
    assert [j.job_id for j in result.run] == [held.id]


async def check_limits_sweep(s: Stores) -> None:
    limits = LimitsStore(s.redis, s.keys)
    await limits.set(QUEUE, "queue", Limit(max_running=1))
    job = await s.running()
    await s.client.enqueue("t.x", None)
    await s.consumer.fetch([QUEUE], count=5, block_ms=0)
    assert await limits.sweep([QUEUE]) == 0  # the slot's lease has not run out
    await s.redis.zadd(s.keys.queue(QUEUE).limit_slots("queue"), {job.job_id: 0}, xx=True)
    assert await limits.sweep([QUEUE]) == 1


async def check_expire(s: Stores) -> None:
    job = await s.running()
    await s.finish(completions=[Completion(job, b"\xc0")])
    await s.redis.zadd(s.keys.queue(QUEUE).expiries, {job.job_id: 0}, xx=True)
    assert await s.scheduler.expire(QUEUE, 10) == 1


async def check_purge(s: Stores) -> None:
    job = await s.client.enqueue("t.x", None)
    await s.client.cancel(job.id)
    assert await s.client.purge(QUEUE, "canceled") == 1


async def check_release_consumer(s: Stores) -> None:
    await s.consumer.ensure_groups([QUEUE])
    assert await s.consumer.read([QUEUE], count=1, block_ms=1) == []  # makes consumer w1
    assert await s.consumer.release_idle_consumers(QUEUE, 0, set()) == ["w1"]


async def check_register(s: Stores) -> None:
    registry = QueueRegistry(s.redis, s.keys, max_queues=1)
    gens = await registry.register([QUEUE])
    assert gens[QUEUE] >= 1
    with pytest.raises(QueueLimitReached):
        await registry.register(["other"])
    assert await s.redis.smembers(s.keys.queues) == {QUEUE.encode()}


async def check_retire_and_unregister(s: Stores) -> None:
    # "retire" and "unregister" together: an emptied queue leaves the registry.
    job = await s.client.enqueue("t.x", None)
    registry = QueueRegistry(s.redis, s.keys)
    assert await registry.retire_drained([QUEUE]) == []  # it holds a job
    await s.client.cancel(job.id)
    assert await s.client.purge(QUEUE, "canceled") == 1
    assert await registry.retire_drained([QUEUE]) == [QUEUE]
    assert await s.redis.smembers(s.keys.queues) == set()
    await s.client.enqueue("t.x", None)  # a create after it registers the queue again
    assert await s.redis.smembers(s.keys.queues) == {QUEUE.encode()}


async def check_schedules(s: Stores) -> None:
    # "schedule_put", "schedule_fired" and "schedule_delete" together: a schedule fires.
    store = ScheduleStore(s.redis, s.keys)
    spec, _, _ = parse_schedule("tick", {"type": "t.x", "every_seconds": 1}, max_payload_bytes=1024)
    assert spec is not None
    stored, created = await store.put(spec)
    assert created
    await s.redis.hset(s.keys.schedule("tick"), "next_run_at", stored.next_run_at - 2000)
    await s.redis.zadd(s.keys.schedules, {"tick": stored.next_run_at - 2000})
    metrics = SchedulerMetrics(CollectorRegistry())
    periodic = Periodic(s.redis, s.keys, s.client.store, grace_ms=10_000, metrics=metrics)
    await periodic.tick(stored.next_run_at)
    after = await store.get("tick")
    assert after.last_job_id is not None
    assert after.next_run_at > stored.next_run_at - 2000
    assert (await s.client.get(after.last_job_id)).schedule == "tick"
    await store.delete("tick")
    assert await s.redis.zcard(s.keys.schedules) == 0


async def check_queue_stats(s: Stores) -> None:
    await s.client.enqueue("t.x", None)
    await s.client.enqueue("t.x", None)
    await s.consumer.ensure_groups([QUEUE])
    assert len(await s.consumer.read([QUEUE], count=1, block_ms=1)) == 1
    [stats] = await s.client.queues()
    assert (stats.name, stats.waiting, stats.pending_in_group, stats.consumers) == (QUEUE, 1, 1, 1)
    assert stats.oldest_waiting_age_seconds is not None


async def check_read_claim(s: Stores) -> None:
    first = await s.client.enqueue("t.x", {"n": 1})
    second = await s.client.enqueue("t.x", {"n": 2})
    await s.consumer.ensure_groups([QUEUE])
    claimed, delivered = await s.consumer.fetch([QUEUE], count=1, block_ms=0)
    assert [j.job_id for j in claimed.run] == [first.id]
    assert len(delivered) == 1
    claimed, _ = await s.consumer.fetch([QUEUE], count=5, block_ms=0)
    assert [j.job_id for j in claimed.run] == [second.id]
    assert (await s.client.get(second.id)).status is Status.RUNNING
    assert await s.consumer.fetch([QUEUE], count=5, block_ms=0) == (ClaimResult(), [])


async def check_set_concurrency(s: Stores) -> None:
    assert not await s.client.resize_worker("w-1-abcdef", 3)  # not live: nothing written
    assert not await s.redis.exists(s.keys.worker("w-1-abcdef"))
    await s.redis.hset(s.keys.worker("w-1-abcdef"), "concurrency", 2)
    assert await s.client.resize_worker("w-1-abcdef", 3)
    assert await s.redis.hget(s.keys.worker("w-1-abcdef"), "desired_concurrency") == b"3"
    assert await s.client.resize_worker("w-1-abcdef", None)
    assert await s.redis.hget(s.keys.worker("w-1-abcdef"), "desired_concurrency") is None


CHECKS: dict[str, Callable[[Stores], Awaitable[None]]] = {
    "read_claim": check_read_claim,
    "queue_stats": check_queue_stats,
    "enqueue": check_enqueue,
    "claim": check_claim,
    "complete": check_complete,
    "fail": check_fail,
    "requeue": check_requeue,
    "cancel": check_cancel,
    "renew": check_renew,
    "replay": check_replay,
    "promote": check_promote,
    "expire": check_expire,
    "limits_set": check_limits_set,
    "limits_delete": check_limits_delete,
    "limits_sweep": check_limits_sweep,
    "purge": check_purge,
    "release_consumer": check_release_consumer,
    "register": check_register,
    "retire": check_retire_and_unregister,
    "unregister": check_retire_and_unregister,
    "set_concurrency": check_set_concurrency,
    "schedule_put": check_schedules,
    "schedule_fired": check_schedules,
    "schedule_delete": check_schedules,
}


def test_every_production_script_is_checked() -> None:
    assert sorted(CHECKS) == sorted(script.name for script in scripts().all())


@pytest.mark.parametrize("name", sorted(CHECKS))
async def test_the_script_runs_on_fakeredis(stores: Stores, name: str) -> None:
    await CHECKS[name](stores)
