"""The queue registry against a real Redis: the cap refuses creates into new queues with
nothing written, a queue holding no job leaves, and a create racing that removal never
leaves a job in a queue missing from the registry (register/retire/unregister scripts)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from conveyor.errors import QueueLimitReached
from conveyor.states import Status
from conveyor.store import replies
from conveyor.store.consumer import ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.store.registry import QueueRegistry
from conveyor.store.scripts import scripts
from tests.helpers import seed

pytestmark = pytest.mark.anyio


def capped(r: Redis, keys: Keys, limit: int) -> ProducerStore:
    return ProducerStore(r, keys, result_ttl_seconds=600, max_queues=limit)


async def registered(r: Redis, keys: Keys) -> set[str]:
    names: Any = await r.smembers(keys.queues)
    return {n.decode() for n in names}


async def queue_keys(r: Redis, keys: Keys, queue: str) -> list[bytes]:
    return [k async for k in r.scan_iter(match=f"{keys.prefix}:{{{queue}}}:*")]


async def fill(store: ProducerStore, names: list[str]) -> None:
    await store.enqueue([seed.spec(n) for n in names])


async def test_a_create_into_a_new_queue_beyond_the_cap_writes_nothing(
    r: Redis, keys: Keys
) -> None:
    store = capped(r, keys, 2)
    await fill(store, ["a", "b"])
    spec = seed.spec("c")
    with pytest.raises(QueueLimitReached) as refused:
        await store.enqueue([spec])
    assert refused.value.limit == 2
    assert refused.value.queues == ["c"]
    assert "CONVEYOR_MAX_QUEUES" in str(refused.value)
    assert await registered(r, keys) == {"a", "b"}
    assert await queue_keys(r, keys, "c") == []


async def test_a_batch_naming_too_many_new_queues_is_refused_whole(r: Redis, keys: Keys) -> None:
    store = capped(r, keys, 3)
    await fill(store, ["a", "b"])
    before = await r.zcard(keys.queue("a").all_index)
    specs = [seed.spec("a"), seed.spec("c"), seed.spec("d"), seed.spec("b")]
    with pytest.raises(QueueLimitReached) as refused:
        await store.enqueue(specs)
    assert sorted(refused.value.queues) == ["c", "d"]
    assert await registered(r, keys) == {"a", "b"}
    assert await r.zcard(keys.queue("a").all_index) == before  # not even the known queue
    assert await queue_keys(r, keys, "c") == []
    assert await queue_keys(r, keys, "d") == []
    await store.enqueue([seed.spec("a"), seed.spec("c")])  # one new queue still fits
    assert await registered(r, keys) == {"a", "b", "c"}


async def test_known_queues_and_idempotent_repeats_still_work_at_the_cap(
    r: Redis, keys: Keys
) -> None:
    store = capped(r, keys, 1)
    [first] = await store.create([seed.spec("a", idempotency_key="k")])
    again = capped(r, keys, 1)  # another process: learns nothing from the first
    [repeat] = await again.create([seed.spec("a", idempotency_key="k")])
    assert not repeat.created
    assert repeat.job.id == first.job.id
    [more] = await again.enqueue([seed.spec("a")])
    assert more.status is Status.PENDING
    with pytest.raises(QueueLimitReached):
        await again.enqueue([seed.spec("b")])


async def test_a_queue_holding_no_job_leaves_and_frees_its_place(
    r: Redis, keys: Keys, consumer: ConsumerStore
) -> None:
    store = capped(r, keys, 4)
    await fill(store, ["pending", "gone", "gone"])
    await store.enqueue([seed.spec("later", delay_seconds=seed.FAR_FUTURE_S)])
    await fill(store, ["finished"])
    await seed.complete(consumer, await seed.claim_one(consumer, "finished"))
    for job_id in await _ids(r, keys, "gone"):  # empty "gone": cancel, then purge
        await store.cancel(job_id)
    assert await store.purge("gone", Status.CANCELED) == 2
    sweep = QueueRegistry(r, keys)
    assert await sweep.retire_drained(["pending", "later", "finished", "gone"]) == ["gone"]
    assert await registered(r, keys) == {"pending", "later", "finished"}
    assert await r.hexists(keys.queue_generations, "gone") == 0
    await store.enqueue([seed.spec("new")])  # its place is free again
    assert "new" in await registered(r, keys)


async def _ids(r: Redis, keys: Keys, queue: str) -> list[str]:
    members: Any = await r.zrange(keys.queue(queue).all_index, 0, -1)
    return [m.decode() for m in members]


async def test_a_create_under_a_retired_generation_is_refused_by_its_script(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    registry = QueueRegistry(r, keys)
    gens = await registry.register(["q"])
    assert await QueueRegistry(r, keys).retire_drained(["q"]) == ["q"]
    spec = seed.spec("q")
    call = producer._enqueue_call(producer._chunks([spec])[0], {}, gens["q"])
    reply = await call.script(r, call.keys, call.args)
    assert replies.enqueue_retired(reply)
    assert await r.exists(keys.queue("q").job(spec.id)) == 0
    assert "q" not in await registered(r, keys)
    fresh = await QueueRegistry(r, keys).register(["q"])
    assert fresh["q"] > gens["q"]
    call = producer._enqueue_call(producer._chunks([spec])[0], {}, fresh["q"])
    assert not replies.enqueue_retired(await call.script(r, call.keys, call.args))
    assert await r.exists(keys.queue("q").job(spec.id)) == 1
    assert await r.exists(keys.queue("q").retired) == 0  # the old tombstone is forgotten


async def test_a_create_racing_the_removal_re_registers_its_queue(
    r: Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep retires the queue between the create's registration and its script:
    the script refuses, the create completes the removal, registers again, and writes."""
    store = capped(r, keys, 10)
    register = store.registry.register
    sweeps = 0

    async def register_then_sweep(queues: Any, **kw: Any) -> dict[str, int]:
        nonlocal sweeps
        gens = await register(queues, **kw)
        if sweeps == 0:
            sweeps += 1
            q = keys.queue("q")
            # Only the retire step: the removal from the registry is left to the create.
            ok = await scripts().retire(r, [*q.header(), q.retired, q.paused], [gens["q"], 60_000])
            assert ok == 1
        return gens

    monkeypatch.setattr(store.registry, "register", register_then_sweep)
    [job] = await store.enqueue([seed.spec("q")])
    assert await seed.status_of(r, keys, "q", job.id) == Status.PENDING
    assert "q" in await registered(r, keys)
    gen: Any = await r.hget(keys.queue_generations, "q")
    # The sweep's own, late removal (under the old generation) leaves the name alone.
    assert not await QueueRegistry(r, keys).unregister("q", int(gen) - 1)
    assert await QueueRegistry(r, keys).retire_drained(["q"]) == []  # it holds a job
    assert "q" in await registered(r, keys)


async def test_a_late_removal_never_takes_a_queue_that_holds_a_job(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    """Retire under generation g, then a create registers again (g+1) and writes: the
    sweep's unregister under g, arriving last, removes nothing."""
    sweep = QueueRegistry(r, keys)
    old = (await sweep.register(["q"]))["q"]
    q = keys.queue("q")
    assert await scripts().retire(r, [*q.header(), q.retired, q.paused], [old, 60_000]) == 1
    # A create now sees the tombstone, completes the removal and registers again.
    [job] = await producer.enqueue([seed.spec("q")])
    assert not await sweep.unregister("q", old)
    assert "q" in await registered(r, keys)
    assert await seed.status_of(r, keys, "q", job.id) == Status.PENDING


async def test_retire_refuses_a_queue_with_any_job(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    await producer.enqueue([seed.spec("d", delay_seconds=seed.FAR_FUTURE_S)])
    q = keys.queue("d")
    assert await scripts().retire(r, [*q.header(), q.retired, q.paused], [1, 60_000]) == 0
    assert await r.exists(q.retired) == 0


async def test_a_workers_configured_queue_is_registered_beyond_the_cap(
    r: Redis, keys: Keys, consumer: ConsumerStore
) -> None:
    store = capped(r, keys, 1)
    await fill(store, ["a"])
    await consumer.ensure_groups(["configured"])
    assert await registered(r, keys) == {"a", "configured"}
    with pytest.raises(QueueLimitReached):
        await store.enqueue([seed.spec("b")])
