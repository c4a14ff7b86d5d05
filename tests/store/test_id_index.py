"""The id index against a real Redis: a lookup by id costs the same commands with 1 or
300 queues, and an entry exists exactly while its job does (created, repeated, refused,
purged, expired)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from conveyor.errors import IdempotencyConflict, JobNotFound
from conveyor.ids import new_job_id
from conveyor.states import Status
from conveyor.store import id_index
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.store.scheduling import SchedulerStore
from tests.helpers import seed
from tests.helpers.round_trips import RoundTrips

pytestmark = pytest.mark.anyio


async def commands(r: Redis) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT (INFO commandstats)."""
    stats: Any = await r.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


async def entry(r: Redis, keys: Keys, job_id: str) -> str | None:
    raw: Any = await r.hget(keys.id_index(job_id), job_id)
    return None if raw is None else raw.decode()


@pytest.mark.parametrize("queues", [1, 300])
async def test_a_lookup_by_id_costs_the_same_whatever_the_number_of_queues(
    r: Redis, keys: Keys, producer: ProducerStore, monkeypatch: pytest.MonkeyPatch, queues: int
) -> None:
    jobs = await producer.enqueue([seed.spec(f"q{i}") for i in range(queues)])
    wanted = jobs[-1]
    await r.config_resetstat()
    trips = RoundTrips(monkeypatch)
    found = await producer.get(wanted.id)
    assert found.id == wanted.id
    assert found.queue == f"q{queues - 1}"
    assert trips.count == 2
    used = await commands(r)
    assert used.get("hget") == 1
    assert used.get("hgetall") == 1
    trips.count = 0
    with pytest.raises(JobNotFound):
        await producer.get(new_job_id())
    assert trips.count == 1  # an unknown id: the index alone


async def test_every_created_job_has_its_entry(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    jobs = await producer.enqueue([seed.spec("a"), seed.spec("b", delay_seconds=60)])
    assert [await entry(r, keys, j.id) for j in jobs] == ["a", "b"]


async def test_an_idempotent_repeat_leaves_no_entry_for_its_own_id(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    [first] = await producer.create([seed.spec("a", idempotency_key="k")])
    again = seed.spec("a", idempotency_key="k")
    [repeat] = await producer.create([again])
    assert repeat.job.id == first.job.id
    assert await entry(r, keys, first.job.id) == "a"
    assert await entry(r, keys, again.id) is None


async def test_a_refused_create_leaves_no_entry(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    await producer.create([seed.spec("a", payload=1, idempotency_key="k")])
    other = seed.spec("a", payload=2, idempotency_key="k")
    racer = ProducerStore(r, keys, result_ttl_seconds=600)
    # Known before any script: refused with nothing written, the index included.
    with pytest.raises(IdempotencyConflict):
        await racer.create([seed.spec("b"), other])
    assert await entry(r, keys, other.id) is None


async def test_purge_and_expiry_drop_the_entries(
    r: Redis, keys: Keys, producer: ProducerStore, scheduler: SchedulerStore
) -> None:
    short = ProducerStore(r, keys, result_ttl_seconds=1)
    [purged, expired] = await short.enqueue([seed.spec("a"), seed.spec("a")])
    await short.cancel(purged.id)
    assert await short.purge("a", Status.CANCELED) == 1
    assert await entry(r, keys, purged.id) is None
    await short.cancel(expired.id)
    assert await entry(r, keys, expired.id) == "a"
    q = keys.queue("a")
    await r.zadd(q.expiries, {expired.id: 1}, xx=True)  # its retention is over
    assert await scheduler.expire("a", 100) == 1
    assert await entry(r, keys, expired.id) is None


async def test_backfill_indexes_jobs_created_before_the_index(
    r: Redis, keys: Keys, producer: ProducerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(id_index, "BACKFILL_PAGE", 3)  # several pages per queue
    jobs = await producer.enqueue([seed.spec("a") for _ in range(7)] + [seed.spec("b")])
    await r.delete(*{keys.id_index(j.id) for j in jobs})  # as before the index existed
    with pytest.raises(JobNotFound):
        await producer.get(jobs[0].id)
    assert not await id_index.backfilled(r, keys)
    assert await id_index.backfill(r, keys, ["a", "b"]) == 8
    assert await id_index.backfilled(r, keys)
    assert [(await producer.get(j.id)).queue for j in jobs] == ["a"] * 7 + ["b"]
