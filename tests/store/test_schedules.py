"""Periodic schedules in Redis: the schedule scripts (put, fired, delete) and the firing
pass of worker/periodic.py against a real server. Fire times are moved into the past by
rewriting next_run_at, so no test waits for the clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from conveyor.ids import job_id_time_ms
from conveyor.metrics import SchedulerMetrics
from conveyor.schedules import (
    ScheduleLimitReached,
    ScheduleNotFound,
    ScheduleSpec,
    fire_job_id,
    parse_schedule,
)
from conveyor.states import Status
from conveyor.store.consumer import ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.store.schedules import Advance, ScheduleStore
from conveyor.worker.periodic import Periodic
from tests.helpers import seed

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE


def spec(name: str = "tick", **body: Any) -> ScheduleSpec:
    fields = {"type": "echo", "queue": Q, "every_seconds": 1, "payload": {"n": 1}, **body}
    parsed, errors, too_large = parse_schedule(name, fields, max_payload_bytes=1 << 20)
    assert parsed is not None, (errors, too_large)
    return parsed


def periodic(r: Redis, keys: Keys, grace_ms: int = 10_000) -> Periodic:
    metrics = SchedulerMetrics(CollectorRegistry())
    return Periodic(r, keys, seed.producer_store(r, keys), grace_ms=grace_ms, metrics=metrics)


async def move_next(r: Redis, keys: Keys, name: str, next_ms: int) -> None:
    """Put a schedule's next fire time at `next_ms` (a test's time machine)."""
    await r.hset(keys.schedule(name), "next_run_at", next_ms)
    await r.zadd(keys.schedules, {name: next_ms})


async def schedule_jobs(r: Redis, keys: Keys, name: str) -> list[dict[str, str]]:
    members: Any = await r.zrange(keys.queue(Q).all_index, 0, -1)
    ids = [i.decode() for i in members]
    raws = [await seed.job_hash(r, keys, Q, i) for i in ids]
    jobs = [{k: v.decode(errors="replace") for k, v in raw.items()} for raw in raws]
    return [j for j in jobs if j.get("schedule") == name]


async def test_put_stores_and_answers_a_schedule(r: Redis, keys: Keys) -> None:
    store = ScheduleStore(r, keys)
    now = await seed.redis_now_ms(r)
    stored, created = await store.put(spec(cron="*/5 * * * * *", every_seconds=None))
    assert created
    assert stored.spec.cron == "*/5 * * * * *"
    assert now < stored.next_run_at <= now + 5000
    assert stored.next_run_at % 5000 == 0
    assert (stored.last_run_at, stored.last_job_id, stored.version) == (None, None, 1)
    shown = stored.to_json()
    assert shown["payload"] == {"n": 1}
    assert shown["timezone"] == "UTC"
    assert [s.spec.name for s in await store.all()] == ["tick"]
    assert await r.zscore(keys.schedules, "tick") == stored.next_run_at


async def test_a_replace_keeps_the_next_fire_time_unless_the_timing_changes(
    r: Redis, keys: Keys
) -> None:
    store = ScheduleStore(r, keys)
    await store.put(spec(every_seconds=3600))
    await move_next(r, keys, "tick", 1234 * 3_600_000)
    kept, created = await store.put(spec(every_seconds=3600, payload="other"))
    assert not created
    assert kept.next_run_at == 1234 * 3_600_000
    assert kept.version == 2
    assert kept.spec.payload_value == "other"
    moved, _ = await store.put(spec(every_seconds=60))
    assert moved.next_run_at != 1234 * 3_600_000
    assert moved.next_run_at % 60_000 == 0
    assert moved.spec.every_seconds == 60
    assert moved.version == 3


async def test_new_schedules_beyond_the_limit_are_refused_with_nothing_written(
    r: Redis, keys: Keys
) -> None:
    store = ScheduleStore(r, keys, max_schedules=2)
    await store.put(spec("a"))
    await store.put(spec("b"))
    with pytest.raises(ScheduleLimitReached):
        await store.put(spec("c"))
    assert not await r.exists(keys.schedule("c"))
    await store.put(spec("b", every_seconds=7))  # a replace is no new schedule
    assert await r.zcard(keys.schedules) == 2


async def test_delete_removes_the_schedule_and_keeps_its_jobs(r: Redis, keys: Keys) -> None:
    store = ScheduleStore(r, keys)
    await store.put(spec())
    now = await seed.redis_now_ms(r)
    await move_next(r, keys, "tick", now - now % 1000)
    await periodic(r, keys).tick(now)
    fired = await schedule_jobs(r, keys, "tick")
    assert fired
    await store.delete("tick")
    with pytest.raises(ScheduleNotFound):
        await store.get("tick")
    with pytest.raises(ScheduleNotFound):
        await store.delete("tick")
    assert await r.zcard(keys.schedules) == 0
    assert await schedule_jobs(r, keys, "tick") == fired


async def test_fired_is_a_compare_and_set(r: Redis, keys: Keys) -> None:
    store = ScheduleStore(r, keys)
    stored, _ = await store.put(spec())
    t = stored.next_run_at
    ok = Advance("tick", t, stored.version, t + 1000, t, fire_job_id("tick", t))
    assert await store.fired([ok, ok]) == [True, False]  # the second saw t + 1000
    stale = Advance("tick", t + 1000, stored.version + 1, t + 2000)
    assert await store.fired([stale]) == [False]  # another version
    after = await store.get("tick")
    assert (after.next_run_at, after.last_run_at) == (t + 1000, t)
    assert await r.zscore(keys.schedules, "tick") == t + 1000


async def test_a_pass_fires_each_late_fire_time_once_with_the_schedule_name(
    r: Redis, keys: Keys
) -> None:
    store = ScheduleStore(r, keys)
    await store.put(spec(max_attempts=2, timeout_seconds=3))
    now = await seed.redis_now_ms(r)
    first = (now // 1000 - 3) * 1000
    await move_next(r, keys, "tick", first)
    p = periodic(r, keys)
    assert await p.tick(now) is not None
    jobs = await schedule_jobs(r, keys, "tick")
    times = sorted(job_id_time_ms(j["id"]) for j in jobs)
    assert times[:4] == [first, first + 1000, first + 2000, first + 3000]
    assert {j["id"] for j in jobs} == {fire_job_id("tick", t) for t in times}
    assert {(j["max_attempts"], j["timeout_ms"], j["type"]) for j in jobs} == {
        ("2", "3000", "echo")
    }
    after = await store.get("tick")
    assert after.last_run_at == times[-1]
    assert after.last_job_id == fire_job_id("tick", times[-1])
    assert after.next_run_at == times[-1] + 1000
    job = await seed.producer_store(r, keys).get(after.last_job_id)
    assert job.schedule == "tick"
    assert job.to_json()["schedule"] == "tick"
    assert p.metrics.schedule_fires._value.get() == len(jobs)


async def test_racing_replicas_and_a_crash_before_the_advance_create_one_job_per_time(
    r: Redis, keys: Keys
) -> None:
    store = ScheduleStore(r, keys)
    await store.put(spec())
    now = await seed.redis_now_ms(r)
    first = (now // 1000 - 5) * 1000
    await move_next(r, keys, "tick", first)
    # A scheduler that created the jobs of the first two fire times, then died.
    await seed.producer_store(r, keys).create(
        [Periodic._job(spec(), t) for t in (first, first + 1000)]
    )
    await asyncio.gather(*(periodic(r, keys).tick(now) for _ in range(3)))
    times = [job_id_time_ms(j["id"]) for j in await schedule_jobs(r, keys, "tick")]
    assert len(times) == len(set(times))
    assert sorted(times)[:6] == [first + s * 1000 for s in range(6)]


@pytest.mark.parametrize("catch_up", ["one", "none"])
async def test_catch_up_after_an_outage(r: Redis, keys: Keys, catch_up: str) -> None:
    store = ScheduleStore(r, keys)
    await store.put(spec(every_seconds=60, catch_up=catch_up))
    now = await seed.redis_now_ms(r)
    await move_next(r, keys, "tick", (now // 60_000 - 30) * 60_000)  # half an hour down
    await periodic(r, keys, grace_ms=1000).tick(now)
    jobs = await schedule_jobs(r, keys, "tick")
    late_one = now % 60_000 < 1000  # the current minute's fire time is still late
    expected = (1 if catch_up == "one" else 0) + (1 if late_one else 0)
    assert len(jobs) == expected
    assert (await store.get("tick")).next_run_at > now


async def test_overlap_skip_waits_for_the_last_job_to_finish(
    r: Redis, keys: Keys, consumer: ConsumerStore, producer: ProducerStore
) -> None:
    store = ScheduleStore(r, keys)
    await store.put(spec(overlap="skip"))
    p = periodic(r, keys, grace_ms=3_600_000)
    now = await seed.redis_now_ms(r)
    # Ten minutes of late fire times: each pass handles MAX_LATE_FIRES of them.
    await move_next(r, keys, "tick", (now // 1000 - 600) * 1000)
    await p.tick(now)
    [first] = await schedule_jobs(r, keys, "tick")  # many late fire times, one job
    await p.tick(now)
    assert len(await schedule_jobs(r, keys, "tick")) == 1  # the first is still pending
    assert p.metrics.schedule_skipped.labels("overlap")._value.get() > 60
    claimed = await seed.claim_one(consumer, Q)
    assert claimed.job_id == first["id"]
    await seed.complete(consumer, claimed)
    assert (await producer.get(first["id"])).status is Status.COMPLETED
    await p.tick(now)
    jobs = await schedule_jobs(r, keys, "tick")
    assert len(jobs) == 2
    assert (await store.get("tick")).last_job_id == max(j["id"] for j in jobs)


async def test_a_name_left_without_its_hash_is_dropped(r: Redis, keys: Keys) -> None:
    await r.zadd(keys.schedules, {"ghost": 1})
    assert await periodic(r, keys).tick(await seed.redis_now_ms(r)) is None
    assert await r.zcard(keys.schedules) == 0


async def test_a_hash_edited_by_hand_is_skipped_and_the_others_fire(
    r: Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    store = ScheduleStore(r, keys)
    for name in ("bad-cron", "bad-field", "good"):
        await store.put(spec(name))
    await r.hdel(keys.schedule("bad-cron"), "every_seconds")
    await r.hset(keys.schedule("bad-cron"), mapping={"cron": "not cron", "timezone": "UTC"})
    await r.hset(keys.schedule("bad-field"), "overlap", "sometimes")
    now = await seed.redis_now_ms(r)
    for name in ("bad-cron", "bad-field", "good"):
        await move_next(r, keys, name, now - now % 1000)
    await periodic(r, keys).tick(now)
    assert len(await schedule_jobs(r, keys, "good")) == 1
    assert await schedule_jobs(r, keys, "bad-cron") == []
    assert await r.exists(keys.schedule("bad-field"))  # left for an operator to fix
    assert {"unreadable schedule hash skipped", "schedule timing cannot be evaluated; skipped"} <= {
        rec.msg for rec in caplog.records
    }
