"""Concurrency and rate limits (lua/_limits.lua, store/limits.py) with real Redis: a full
limit holds a job pending and uncharged, every way an attempt ends frees its slot and
starts a held job at once, a dead worker's slot is freed when its lease ends, and a rate
limit delays a job to its reserved start."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from conveyor.errors import ValidationError
from conveyor.states import Status
from conveyor.store.consumer import ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.limits import (
    Limit,
    LimitCountReached,
    LimitsStore,
    parse_limit,
    validate_limit_key,
)
from conveyor.store.producer import ProducerStore
from conveyor.store.scheduling import SchedulerStore
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants
from tests.helpers.wait import eventually_async

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE


@pytest.fixture
def limits(r: Redis, keys: Keys) -> LimitsStore:
    return LimitsStore(r, keys, max_per_queue=3)


async def members(r: Redis, key: str) -> list[str]:
    found: list[bytes] = await r.zrange(key, 0, -1)  # type: ignore[assignment]
    return [m.decode() for m in found]


async def fetch_all(consumer: ConsumerStore, count: int = 100) -> tuple[list[str], dict[str, str]]:
    """One fetch (read_claim.lua): the ids started, and the held ones with their key."""
    await consumer.ensure_groups([Q])
    result, _ = await consumer.fetch([Q], count=count, block_ms=0)
    return [j.job_id for j in result.run], dict(result.held)


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["queue", "type:email.send", "tenant-42", "A_b.c"])
def test_limit_keys_are_the_queue_a_type_or_a_name(key: str) -> None:
    assert validate_limit_key(key) == key


@pytest.mark.parametrize(
    "key", ["", "type:", "type:a:b", "a b", "{x}", "x" * 65, "payload,result", 3, None]
)
def test_other_limit_keys_are_refused(key: object) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_limit_key(key)
    assert exc.value.field == "key"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"max_running": 0}, "max_running"),
        ({"max_running": 1.5}, "max_running"),
        ({"max_running": True}, "max_running"),
        ({"max_per_second": 0}, "max_per_second"),
        ({"max_per_second": "5"}, "max_per_second"),
        ({"max_per_second": float("inf")}, "max_per_second"),
        ({"max_per_second": 5e-324}, "max_per_second"),
        ({"max_running": 2, "burst": None}, "burst"),
        ({"burst": 3}, "burst"),
        ({"max_per_second": 2, "burst": 0}, "burst"),
        ({"max_running": 2, "extra": 1}, "extra"),
        ([1], "body"),
    ],
)
def test_bad_limit_bodies_name_the_field(body: object, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        parse_limit(body)
    assert exc.value.field == field


def test_a_limit_body_parses() -> None:
    assert parse_limit({"max_running": 3}) == Limit(max_running=3)
    assert parse_limit({"max_per_second": 2, "burst": 4}) == Limit(None, 2.0, 4)
    assert parse_limit({"max_running": 3.0}) == Limit(max_running=3)  # an integer in JSON


async def test_set_list_and_delete_limits(limits: LimitsStore, r: Redis, keys: Keys) -> None:
    assert await limits.set(Q, "queue", Limit(max_running=2)) is True
    assert await limits.set(Q, "queue", Limit(max_running=5)) is False
    assert await limits.set(Q, "type:echo", Limit(max_per_second=10.0, burst=2)) is True
    states = await limits.states(Q)
    assert [s.to_json() for s in states] == [
        {"key": "queue", "max_running": 5, "running": 0, "held": 0},
        {"key": "type:echo", "max_per_second": 10.0, "burst": 2, "running": 0, "held": 0},
    ]
    assert await limits.delete(Q, "queue") is True
    assert await limits.delete(Q, "queue") is False
    assert [s.key for s in await limits.states(Q)] == ["type:echo"]
    assert await r.hkeys(keys.queue(Q).limits) == [b"type:echo"]


async def test_the_number_of_limit_keys_is_bounded(
    limits: LimitsStore, r: Redis, keys: Keys
) -> None:
    for name in ("a", "b", "c"):
        await limits.set(Q, name, Limit(max_running=1))
    with pytest.raises(LimitCountReached):
        await limits.set(Q, "d", Limit(max_running=1))
    await limits.set(Q, "c", Limit(max_running=9))  # an existing key may still change
    assert sorted(await r.hkeys(keys.queue(Q).limits)) == [b"a", b"b", b"c"]


# -- concurrency ---------------------------------------------------------------------------


async def test_no_limit_writes_no_limit_state(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    await seed.enqueue_many(producer, 3)
    started, held = await fetch_all(consumer)
    assert (len(started), held) == (3, {})
    limit_keys = [k async for k in r.scan_iter(match=f"{keys.queue(Q).base}:[lshr][ilae]*")]
    assert limit_keys == []


async def test_a_full_limit_holds_jobs_pending_and_uncharged(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, limits: LimitsStore
) -> None:
    await limits.set(Q, "queue", Limit(max_running=2))
    jobs = await seed.enqueue_many(producer, 5)
    started, held = await fetch_all(consumer)
    assert started == [j.id for j in jobs[:2]]
    assert held == {j.id: "queue" for j in jobs[2:]}
    q = keys.queue(Q)
    assert await r.zcard(q.limit_slots("queue")) == 2
    assert await members(r, q.limit_held("queue")) == list(held)
    for job in jobs[2:]:
        h = await seed.job_hash(r, keys, Q, job.id)
        assert h["status"] == b"pending"
        assert (h["attempts"], h["deliveries"]) == (b"0", b"0")
        assert h["held"] == b"queue"
    assert await r.xlen(q.stream) == 2  # only the running jobs' entries
    assert [s.to_json() for s in await limits.states(Q)] == [
        {"key": "queue", "max_running": 2, "running": 2, "held": 3}
    ]
    await assert_invariants(r, keys, [Q])


async def test_each_way_an_attempt_ends_starts_one_held_job(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, limits: LimitsStore
) -> None:
    await limits.set(Q, "queue", Limit(max_running=1))
    jobs = await seed.enqueue_many(producer, 4)
    ids = [j.id for j in jobs]
    await consumer.ensure_groups([Q])
    run = (await consumer.fetch([Q], count=10, block_ms=0))[0].run
    assert [j.job_id for j in run] == ids[:1]
    assert await seed.complete(consumer, run[0]) == "completed"
    assert await seed.stream_job_ids(r, keys, Q) == ids[1:2]  # moved back at once
    [second] = (await consumer.fetch([Q], count=10, block_ms=0))[0].run
    assert second.job_id == ids[1]
    assert await seed.fail(consumer, second, delay_ms=60_000, max_attempts=3) == "retrying"
    [third] = (await consumer.fetch([Q], count=10, block_ms=0))[0].run
    assert third.job_id == ids[2]
    assert await seed.requeue(consumer, third) == "pending"  # the shutdown hand-back
    # Handed back first (a new entry), then the held job it freed the slot for.
    assert await seed.stream_job_ids(r, keys, Q) == [ids[2], ids[3]]
    started, held = await fetch_all(consumer)
    assert (started, held) == ([ids[2]], {ids[3]: "queue"})
    h = await seed.job_hash(r, keys, Q, ids[1])
    assert "slots" not in h
    assert await r.zcard(keys.queue(Q).limit_slots("queue")) == 1
    await assert_invariants(r, keys, [Q])


async def test_type_and_job_limit_keys_apply_on_their_own(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, limits: LimitsStore
) -> None:
    await limits.set(Q, "type:slow", Limit(max_running=1))
    await limits.set(Q, "tenant-a", Limit(max_running=1))
    slow = [await seed.enqueue(producer, Q, "slow") for _ in range(2)]
    tenant = [await seed.enqueue(producer, Q, "echo", limit_key="tenant-a") for _ in range(2)]
    other = await seed.enqueue(producer, Q, "echo", limit_key="tenant-b")
    started, held = await fetch_all(consumer)
    assert sorted(started) == sorted([slow[0].id, tenant[0].id, other.id])
    assert held == {slow[1].id: "type:slow", tenant[1].id: "tenant-a"}
    h = await seed.job_hash(r, keys, Q, tenant[0].id)
    assert (h["limit_key"], h["slots"]) == (b"tenant-a", b"tenant-a")


async def test_canceling_a_held_job_removes_it_from_the_wait(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, limits: LimitsStore
) -> None:
    await limits.set(Q, "queue", Limit(max_running=1))
    _, second = await seed.enqueue_many(producer, 2)
    await fetch_all(consumer)
    await producer.cancel(second.id)
    assert await r.zcard(keys.queue(Q).limit_held("queue")) == 0
    assert await seed.status_of(r, keys, Q, second.id) is Status.CANCELED
    await assert_invariants(r, keys, [Q])


async def test_a_dead_workers_slot_is_freed_when_its_lease_ends(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    limits: LimitsStore,
) -> None:
    dead = ConsumerStore(r, keys, "dead", max_deliveries=5, result_ttl_seconds=60, lease_ms=300)
    await limits.set(Q, "queue", Limit(max_running=1))
    first, second = await seed.enqueue_many(producer, 2)
    started, held = await fetch_all(dead)
    assert (started, list(held)) == ([first.id], [second.id])
    # The worker dies: nothing ends the attempt. Before the lease ends the sweep frees
    # nothing; after it, the held job goes back onto the stream.
    assert await limits.sweep([Q]) == 0
    await eventually_async(lambda: limits.sweep([Q]), timeout=5)
    assert second.id in await seed.stream_job_ids(r, keys, Q)
    assert await r.zcard(keys.queue(Q).limit_slots("queue")) == 0
    live = seed.consumer_store(r, keys, "live")
    started, held = await fetch_all(live)
    assert (started, held) == ([second.id], {})


async def test_renewing_the_lease_keeps_the_slot(
    r: Redis, keys: Keys, producer: ProducerStore, limits: LimitsStore
) -> None:
    worker = ConsumerStore(r, keys, "w", max_deliveries=5, result_ttl_seconds=60, lease_ms=400)
    await limits.set(Q, "queue", Limit(max_running=1))
    await seed.enqueue_many(producer, 2)
    await worker.ensure_groups([Q])
    [job] = (await worker.fetch([Q], count=10, block_ms=0))[0].run
    slots = keys.queue(Q).limit_slots("queue")
    before = await r.zscore(slots, job.job_id)
    assert await worker.renew([job]) == {job.job_id: "ok"}
    after = await r.zscore(slots, job.job_id)
    assert before is not None
    assert after is not None
    assert after >= before
    assert after >= await seed.redis_now_ms(r) + 300


async def test_reclaiming_a_lost_attempt_keeps_the_limit(
    r: Redis, keys: Keys, producer: ProducerStore, limits: LimitsStore
) -> None:
    dead = ConsumerStore(r, keys, "dead", max_deliveries=5, result_ttl_seconds=60, lease_ms=200)
    live = ConsumerStore(r, keys, "live", max_deliveries=5, result_ttl_seconds=60, lease_ms=200)
    await limits.set(Q, "queue", Limit(max_running=1))
    first, second = await seed.enqueue_many(producer, 2)
    await fetch_all(dead)
    taken = await seed.reclaim(live, Q, min_idle_ms=250)
    result = await live.claim(taken)
    assert [j.job_id for j in result.run] == [first.id]
    slots = keys.queue(Q).limit_slots("queue")
    assert await members(r, slots) == [first.id]
    held = keys.queue(Q).limit_held("queue")
    assert await members(r, held) == [second.id]


async def test_removing_a_limit_releases_its_held_jobs(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, limits: LimitsStore
) -> None:
    await limits.set(Q, "queue", Limit(max_running=1))
    jobs = await seed.enqueue_many(producer, 4)
    await fetch_all(consumer)
    assert await limits.delete(Q, "queue") is True
    assert await limits.states(Q) == []
    assert sorted(await seed.stream_job_ids(r, keys, Q)) == sorted(j.id for j in jobs)
    await limits.sweep([Q])  # nothing left held: the key is forgotten
    assert await r.exists(keys.queue(Q).limits) == 0


async def test_raising_a_limit_starts_held_jobs_at_once(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, limits: LimitsStore
) -> None:
    await limits.set(Q, "queue", Limit(max_running=1))
    jobs = await seed.enqueue_many(producer, 3)
    await fetch_all(consumer)
    await limits.set(Q, "queue", Limit(max_running=3))
    started, held = await fetch_all(consumer)
    assert (sorted(started), held) == (sorted(j.id for j in jobs[1:]), {})


async def test_a_limit_key_of_another_type_leaves_the_job_alone(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, limits: LimitsStore
) -> None:
    await limits.set(Q, "queue", Limit(max_running=1))
    await r.set(keys.queue(Q).limit_slots("queue"), "x")
    job = await seed.enqueue(producer, Q)
    await consumer.ensure_groups([Q])
    result, _ = await consumer.fetch([Q], count=10, block_ms=0)
    assert result.skipped == [(job.id, "wrongtype")]
    assert await seed.status_of(r, keys, Q, job.id) is Status.PENDING
    assert len(await seed.pel(r, keys, Q)) == 1  # left in the PEL, nothing written


# -- rate -----------------------------------------------------------------------------------


async def test_a_rate_limit_delays_jobs_to_their_reserved_starts(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    consumer: ConsumerStore,
    scheduler: SchedulerStore,
    limits: LimitsStore,
) -> None:
    await limits.set(Q, "queue", Limit(max_per_second=5.0))
    jobs = await seed.enqueue_many(producer, 3)
    await consumer.ensure_groups([Q])
    result, _ = await consumer.fetch([Q], count=10, block_ms=0)
    assert [j.job_id for j in result.run] == [jobs[0].id]
    start = result.run[0].started_at_ms
    dues = dict(result.limited)
    assert list(dues) == [jobs[1].id, jobs[2].id]
    # 200 ms apart (5 per second), by Redis's clock
    assert start + 199 <= dues[jobs[1].id] <= start + 201
    assert dues[jobs[1].id] + 199 <= dues[jobs[2].id] <= dues[jobs[1].id] + 201
    for job in jobs[1:]:
        h = await seed.job_hash(r, keys, Q, job.id)
        assert h["status"] == b"scheduled"
        assert (h["attempts"], h["deliveries"]) == (b"0", b"0")
        assert await seed.delayed_score(r, keys, Q, job.id) == dues[job.id]
    await assert_invariants(r, keys, [Q])

    async def promoted() -> bool:
        await scheduler.promote_due(Q, await seed.redis_now_ms(r) + 1000, 10)
        return await seed.status_of(r, keys, Q, jobs[1].id) is Status.PENDING

    await eventually_async(promoted, timeout=5)
    result, _ = await consumer.fetch([Q], count=10, block_ms=0)
    assert [j.job_id for j in result.run] == [jobs[1].id]  # its start was paid already
    assert "rate_slot" not in await seed.job_hash(r, keys, Q, jobs[1].id)


async def test_a_burst_lets_that_many_start_at_once(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore, limits: LimitsStore
) -> None:
    await limits.set(Q, "queue", Limit(max_per_second=1.0, burst=3))
    await seed.enqueue_many(producer, 5)
    await consumer.ensure_groups([Q])
    result, _ = await consumer.fetch([Q], count=10, block_ms=0)
    assert (len(result.run), len(result.limited)) == (3, 2)
    start = result.run[0].started_at_ms
    # Three at once, then one a second: the two others' reserved starts are 1 s and 2 s on.
    assert [due - start for _, due in result.limited] in ([1000, 2000], [1001, 2001])
    ttl = await r.pttl(keys.queue(Q).limit_rate("queue"))
    assert 4_000 < ttl <= 5_002  # the state expires once its arrival time has passed
