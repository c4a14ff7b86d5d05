"""A job on its last chance before the poison bound runs alone (worker.last_chance).

Jobs running beside a job that kills its worker lose their attempts with it; run beside it
again and again they would reach max_deliveries and be failed as poison too. The fault
suite's poison scenario (tests/faults/test_poison.py) shows the effect end to end; these
tests pin the rule: the suspect is claimed only when nothing else runs, nothing starts
beside it, and while it waits it is an unclaimed delivery: a cancel ends it unrun and a
shutdown hands it back.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from conveyor.job import Outcome
from conveyor.states import Status
from conveyor.store.consumer import Delivery
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.worker.context import JobContext
from conveyor.worker.last_chance import LastChance
from conveyor.worker.registry import Registry
from conveyor.worker.runtime import Worker
from tests.helpers.wait import eventually_async
from tests.worker.support import enqueue, running, wait_all, wait_status, worker_settings

MAX_DELIVERIES = 3


def test_a_deferred_delivery_is_next_up_only_when_nothing_runs() -> None:
    chance = LastChance()
    first, second = Delivery("q", "1-0", "a"), Delivery("q", "2-0", "b")
    chance.defer([first, second, Delivery("q", "1-0", "a")])  # a repeat is kept once
    assert chance.deferred == [first, second]
    assert chance.active
    busy: dict[str, Any] = {"other": object()}
    assert chance.next_up(busy) is None
    assert chance.next_up({}) is first
    running: Any = object()
    chance.claimed(first, running)
    assert chance.deferred == [second]
    assert chance.next_up({}) is None  # the first runs alone still
    chance.ended(running)
    assert chance.next_up({}) is second
    chance.forget("b")
    assert not chance.active


async def _wait_deferred(worker: Worker, job_id: str, *, present: bool = True) -> None:
    async def check() -> bool | None:
        deferred = job_id in [d.job_id for d in worker.last_chance.deferred]
        return True if deferred is present else None

    what = f"{job_id} {'' if present else 'no longer '}deferred"
    await eventually_async(check, timeout=10, interval=0.01, what=what)


async def _lose_attempts(r: Redis, keys: Keys, job_id: str, lost: int) -> None:
    """As if `lost` earlier attempts had been lost with their worker."""
    await r.hset(keys.queue("default").job(job_id), "lost", lost)


@pytest.mark.anyio
async def test_a_job_on_its_last_chance_runs_with_nothing_beside_it(
    redis_url: str, prefix: str, r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    registry = Registry()
    running_now: set[str] = set()
    beside_suspect: set[str] = set()  # jobs that ran at any moment the suspect ran
    suspect_id = ""

    @registry.handler("work")
    async def work(ctx: JobContext, payload: Any) -> None:
        running_now.add(ctx.job_id)
        try:
            for _ in range(10):  # long enough to overlap, checked at every step
                if suspect_id in running_now:
                    beside_suspect.update(running_now - {suspect_id})
                await asyncio.sleep(0.02)
        finally:
            running_now.discard(ctx.job_id)

    before = [await enqueue(producer, "work") for _ in range(3)]
    suspect_id = await enqueue(producer, "work")
    await _lose_attempts(r, keys, suspect_id, MAX_DELIVERIES - 1)
    after = [await enqueue(producer, "work") for _ in range(4)]
    settings = worker_settings(redis_url, prefix, concurrency=4, max_deliveries=MAX_DELIVERIES)
    worker = Worker(settings, registry)
    async with running(worker):
        jobs = await wait_all(producer, [*before, suspect_id, *after], Status.COMPLETED)
    assert beside_suspect == set()
    assert worker.metrics.run_alone._value.get() == 1
    suspect = jobs[len(before)]
    assert (suspect.attempts, suspect.history[-1].outcome) == (1, Outcome.COMPLETED)


@pytest.mark.anyio
async def test_canceling_a_job_waiting_to_run_alone_ends_it_unrun(
    redis_url: str, prefix: str, r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    registry = Registry()
    ran: list[str] = []
    blocker_started, release = asyncio.Event(), asyncio.Event()

    @registry.handler("block")
    async def block(ctx: JobContext, payload: Any) -> None:
        blocker_started.set()
        await release.wait()

    @registry.handler("work")
    async def work(ctx: JobContext, payload: Any) -> None:
        ran.append(ctx.job_id)

    blocker = await enqueue(producer, "block")
    suspect = await enqueue(producer, "work")
    await _lose_attempts(r, keys, suspect, MAX_DELIVERIES - 1)
    settings = worker_settings(redis_url, prefix, max_deliveries=MAX_DELIVERIES)
    worker = Worker(settings, registry)
    async with running(worker):
        await asyncio.wait_for(blocker_started.wait(), 10)
        await _wait_deferred(worker, suspect)  # delivered, not claimed: still pending
        assert (await producer.get(suspect)).status is Status.PENDING
        await producer.cancel(suspect)
        await wait_status(producer, suspect, Status.CANCELED)
        release.set()
        await wait_status(producer, blocker, Status.COMPLETED)
        await _wait_deferred(worker, suspect, present=False)  # its claim found it canceled
    assert ran == []


@pytest.mark.anyio
async def test_a_job_waiting_to_run_alone_is_handed_back_at_shutdown(
    redis_url: str, prefix: str, r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    registry = Registry()
    ran: list[str] = []
    blocker_started = asyncio.Event()

    @registry.handler("block")
    async def block(ctx: JobContext, payload: Any) -> None:
        blocker_started.set()
        await asyncio.sleep(30)

    @registry.handler("work")
    async def work(ctx: JobContext, payload: Any) -> None:
        ran.append(ctx.job_id)

    await enqueue(producer, "block")
    suspect = await enqueue(producer, "work")
    await _lose_attempts(r, keys, suspect, MAX_DELIVERIES - 1)
    settings = worker_settings(
        redis_url, prefix, max_deliveries=MAX_DELIVERIES, shutdown_timeout_seconds=0.5
    )
    worker = Worker(settings, registry)
    async with running(worker) as task:
        await asyncio.wait_for(blocker_started.wait(), 10)
        await _wait_deferred(worker, suspect)
        worker.request_stop()
        await asyncio.wait_for(task, 10)
    job = await producer.get(suspect)
    assert ran == []
    # Back in the queue, its attempt not charged and its lost count unchanged: the next
    # worker gives it the same last chance.
    assert job.status is Status.PENDING
    assert job.history[-1].outcome == Outcome.RETURNED
    assert int(await r.hget(keys.queue("default").job(suspect), "lost") or 0) == 2
