"""`POST /jobs` group commit: concurrent creates share Redis round trips, each request
still gets its own job or its own error."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

from conveyor.api.coalesce import CreateCoalescer
from conveyor.errors import NotReplicated
from conveyor.job import Job
from conveyor.states import Status
from conveyor.values import Created, NewJob

pytestmark = pytest.mark.anyio


def _new(i: int, queue: str = "q", idempotency_key: str | None = None) -> NewJob:
    return NewJob(
        id=f"01JOB{i:021d}",
        type="echo",
        queue=queue,
        payload=b"\x80",
        idempotency_key=idempotency_key,
        fingerprint="fp" if idempotency_key else None,
    )


def _created(job: NewJob) -> Created:
    return Created(
        Job(id=job.id, type=job.type, queue=job.queue, status=Status.PENDING, created_at=1),
        True,
    )


class UnreplicatedStore:
    """Writes every job, but no replica confirms them."""

    async def create(self, jobs: Sequence[NewJob]) -> list[Created]:
        await asyncio.sleep(0)
        raise NotReplicated([j.id for j in jobs], 0, 1)


class RecordingStore:
    """Answers every create, remembering the jobs of each call."""

    def __init__(self, fail_queue: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_queue = fail_queue

    async def create(self, jobs: Sequence[NewJob]) -> list[Created]:
        self.calls.append([j.id for j in jobs])
        await asyncio.sleep(0)  # a round trip: others may queue up meanwhile
        if any(j.queue == self.fail_queue for j in jobs):
            raise ConnectionError("redis went away")
        return [_created(j) for j in jobs]


async def test_concurrent_creates_of_one_queue_share_one_call() -> None:
    store = RecordingStore()
    coalescer = CreateCoalescer(store)
    jobs = [_new(i) for i in range(20)]
    results = await asyncio.gather(*(coalescer.create(j) for j in jobs))
    assert [r.job.id for r in results] == [j.id for j in jobs]  # each its own job
    assert store.calls == [[j.id for j in jobs]]
    assert (coalescer.groups, coalescer.jobs) == (1, 20)


async def test_a_lone_create_is_sent_at_once() -> None:
    store = RecordingStore()
    coalescer = CreateCoalescer(store)
    first = await coalescer.create(_new(1))
    second = await coalescer.create(_new(2))
    assert [first.job.id, second.job.id] == [_new(1).id, _new(2).id]
    assert store.calls == [[_new(1).id], [_new(2).id]]


async def test_groups_never_mix_queues_or_exceed_the_bound() -> None:
    store = RecordingStore()
    coalescer = CreateCoalescer(store, max_jobs=3)
    jobs = [_new(i, queue="a" if i % 2 else "b") for i in range(10)]
    await asyncio.gather(*(coalescer.create(j) for j in jobs))
    by_id = {j.id: j.queue for j in jobs}
    assert sorted(i for call in store.calls for i in call) == sorted(by_id)
    for call in store.calls:
        assert len({by_id[i] for i in call}) == 1
        assert len(call) <= 3


async def test_jobs_with_an_idempotency_key_go_alone() -> None:
    store = RecordingStore()
    coalescer = CreateCoalescer(store)
    keyed = [_new(i, idempotency_key=f"k{i}") for i in range(3)]
    plain = [_new(10 + i) for i in range(3)]
    await asyncio.gather(*(coalescer.create(j) for j in keyed + plain))
    assert sorted(store.calls) == sorted([[j.id] for j in keyed] + [[j.id for j in plain]])


async def test_an_error_reaches_every_request_of_its_group_only() -> None:
    store = RecordingStore(fail_queue="broken")
    coalescer = CreateCoalescer(store)
    outcomes = await asyncio.gather(
        *(coalescer.create(_new(i, queue="broken")) for i in range(3)),
        *(coalescer.create(_new(10 + i, queue="fine")) for i in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(o, ConnectionError) for o in outcomes[:3])
    assert [o.job.id for o in outcomes[3:] if isinstance(o, Created)] == [
        _new(10 + i).id for i in range(3)
    ]


async def test_unreplicated_jobs_are_reported_to_their_own_request_only() -> None:
    coalescer = CreateCoalescer(UnreplicatedStore())
    jobs = [_new(i) for i in range(4)]
    outcomes = await asyncio.gather(*(coalescer.create(j) for j in jobs), return_exceptions=True)
    assert coalescer.groups == 1
    for job, outcome in zip(jobs, outcomes, strict=True):
        assert isinstance(outcome, NotReplicated)
        assert outcome.job_ids == [job.id]  # never another client's job id
        assert (outcome.acknowledged, outcome.required) == (0, 1)


async def test_a_request_that_stops_waiting_does_not_disturb_the_others() -> None:
    store = RecordingStore()
    coalescer = CreateCoalescer(store)
    impatient = asyncio.ensure_future(coalescer.create(_new(1)))
    others = [asyncio.ensure_future(coalescer.create(_new(i))) for i in range(2, 5)]
    await asyncio.sleep(0)
    impatient.cancel()
    results = await asyncio.gather(*others)
    assert [r.job.id for r in results] == [_new(i).id for i in range(2, 5)]
    assert impatient.cancelled()


@pytest.mark.parametrize("concurrency", [40])
async def test_concurrent_posts_each_create_their_own_job(
    app: Starlette, client: httpx.AsyncClient, r: Redis, prefix: str, concurrency: int
) -> None:
    answers = await asyncio.gather(
        *(
            client.post("/jobs", json={"type": "echo", "payload": {"i": i}, "queue": "grouped"})
            for i in range(concurrency)
        )
    )
    assert [a.status_code for a in answers] == [201] * concurrency
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == concurrency
    assert {a.json()["payload"]["i"] for a in answers} == set(range(concurrency))
    assert await r.zcard(f"{prefix}:{{grouped}}:idx:pending") == concurrency
    assert await r.xlen(f"{prefix}:{{grouped}}:stream") == concurrency
    coalescer: CreateCoalescer = app.state.coalescer
    assert coalescer.jobs == concurrency
    assert coalescer.groups < concurrency  # some requests shared a round trip
