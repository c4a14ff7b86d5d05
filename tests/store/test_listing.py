"""ProducerStore.list_jobs and get: newest first across queues, filters, creation-time
windows, and cursor pages that neither repeat nor miss a job."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from conveyor.errors import JobNotFound
from conveyor.ids import job_id_time_ms, new_job_id
from conveyor.job import Job
from conveyor.states import Status
from conveyor.store.consumer import ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.values import ListQuery
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants

pytestmark = pytest.mark.anyio


async def all_pages(producer: ProducerStore, query: ListQuery) -> list[list[Job]]:
    pages: list[list[Job]] = []
    cursor = None
    for _ in range(1000):
        page = await producer.list_jobs(replace(query, cursor=cursor))
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor
    raise AssertionError("pagination did not end")


def ids(jobs: list[Job]) -> list[str]:
    return [j.id for j in jobs]


async def mixed(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> dict[str, list[Job]]:
    """Jobs in two queues, two types and several statuses, created in this order."""
    out: dict[str, list[Job]] = {"a": [], "b": []}
    for i in range(12):
        queue = "a" if i % 2 == 0 else "b"
        job_type = "echo" if i % 3 else "sleep"
        out[queue].append(await seed.enqueue(producer, queue, job_type, i))
    # a: first two completed, next one running; b: first one canceled, last one scheduled.
    for _ in range(2):
        await seed.complete(consumer, await seed.claim_one(consumer, "a"))
    await seed.claim_one(consumer, "a")
    await producer.cancel(out["b"][0].id)
    out["b"].append(await seed.enqueue(producer, "b", "echo", delay_seconds=60))
    return out


@pytest.fixture
async def jobs(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> dict[str, list[Job]]:
    return await mixed(r, keys, producer, consumer)


async def test_jobs_come_newest_first_across_queues(
    r: Redis, keys: Keys, producer: ProducerStore, jobs: dict[str, list[Job]]
) -> None:
    page = await producer.list_jobs(ListQuery(limit=100))
    everything = sorted(jobs["a"] + jobs["b"], key=lambda j: j.id, reverse=True)
    assert ids(page.items) == ids(everything)
    assert page.next_cursor is None
    # Listed jobs are read from Redis, with their current status.
    statuses = {j.id: j.status for j in page.items}
    assert statuses[jobs["a"][0].id] is Status.COMPLETED
    assert statuses[jobs["a"][2].id] is Status.RUNNING
    assert statuses[jobs["b"][0].id] is Status.CANCELED
    assert statuses[jobs["b"][-1].id] is Status.SCHEDULED
    await assert_invariants(r, keys, ["a", "b"])


async def test_limit_cuts_the_page_and_returns_a_cursor(
    r: Redis, keys: Keys, producer: ProducerStore, jobs: dict[str, list[Job]]
) -> None:
    everything = sorted(ids(jobs["a"] + jobs["b"]), reverse=True)
    page = await producer.list_jobs(ListQuery(limit=5))
    assert ids(page.items) == everything[:5]
    assert page.next_cursor == everything[4]
    nxt = await producer.list_jobs(ListQuery(limit=5, cursor=page.next_cursor))
    assert ids(nxt.items) == everything[5:10]
    await assert_invariants(r, keys, ["a", "b"])


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 13, 50])
async def test_pages_cover_everything_once(
    r: Redis, keys: Keys, producer: ProducerStore, jobs: dict[str, list[Job]], limit: int
) -> None:
    pages = await all_pages(producer, ListQuery(limit=limit))
    listed = [i for p in pages for i in ids(p)]
    assert listed == sorted(ids(jobs["a"] + jobs["b"]), reverse=True)
    assert all(len(p) <= limit for p in pages)
    await assert_invariants(r, keys, ["a", "b"])


@pytest.mark.parametrize(
    ("statuses", "queue", "job_type"),
    [
        ((Status.PENDING,), None, None),
        ((Status.COMPLETED, Status.CANCELED), None, None),
        ((Status.RUNNING, Status.SCHEDULED, Status.PENDING), None, None),
        ((), "a", None),
        ((), "b", None),
        ((), None, "sleep"),
        ((Status.PENDING,), "b", "echo"),
        ((Status.FAILED,), None, None),
        ((), "nope", None),
    ],
)
@pytest.mark.parametrize("limit", [2, 100])
async def test_filters_select_exactly_the_matching_jobs(
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    jobs: dict[str, list[Job]],
    statuses: tuple[Status, ...],
    queue: str | None,
    job_type: str | None,
    limit: int,
) -> None:
    current = {j.id: j for j in (await producer.list_jobs(ListQuery(limit=100))).items}
    want = sorted(
        (
            j.id
            for j in current.values()
            if (not statuses or j.status in statuses)
            and (queue is None or j.queue == queue)
            and (job_type is None or j.type == job_type)
        ),
        reverse=True,
    )
    query = ListQuery(statuses=statuses, queue=queue, type=job_type, limit=limit)
    listed = [i for p in await all_pages(producer, query) for i in ids(p)]
    assert listed == want
    await assert_invariants(r, keys, ["a", "b"])


async def test_a_rare_type_is_found_across_pages_of_scanning(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    """Most index entries do not match: pages come back short, the cursor goes on."""
    created = await seed.enqueue_many(producer, 1500, "q", "common")
    rare = [await seed.enqueue(producer, "q", "rare", i) for i in range(3)]
    created += await seed.enqueue_many(producer, 1500, "q", "common")
    query = ListQuery(type="rare", limit=2)
    pages = await all_pages(producer, query)
    assert [i for p in pages for i in ids(p)] == sorted(ids(rare), reverse=True)
    assert len(created) == 3000
    await assert_invariants(r, keys, ["q"])


async def test_creation_window_uses_the_time_in_the_ids(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    early = await seed.enqueue_many(producer, 3, "q")
    await asyncio.sleep(0.005)
    middle = await seed.enqueue_many(producer, 3, "q")
    await asyncio.sleep(0.005)
    late = await seed.enqueue_many(producer, 3, "q")
    start = job_id_time_ms(middle[0].id)
    end = job_id_time_ms(middle[-1].id)
    assert job_id_time_ms(early[-1].id) < start
    assert end < job_id_time_ms(late[0].id)

    def listed() -> list[str]:
        return [i for p in pages for i in ids(p)]

    pages = await all_pages(producer, ListQuery(created_after_ms=start, created_before_ms=end))
    assert listed() == sorted(ids(middle), reverse=True)
    pages = await all_pages(producer, ListQuery(created_after_ms=start, limit=2))
    assert listed() == sorted(ids(middle + late), reverse=True)
    pages = await all_pages(producer, ListQuery(created_before_ms=end, limit=2))
    assert listed() == sorted(ids(early + middle), reverse=True)
    # A cursor from inside the window continues inside it.
    first = await producer.list_jobs(
        ListQuery(created_after_ms=start, created_before_ms=end, limit=1)
    )
    rest = await producer.list_jobs(
        ListQuery(created_after_ms=start, created_before_ms=end, cursor=first.next_cursor)
    )
    assert ids(first.items) + ids(rest.items) == sorted(ids(middle), reverse=True)
    await assert_invariants(r, keys, ["q"])


async def test_pages_stay_complete_with_inserts_between_them(
    r: Redis, keys: Keys, producer: ProducerStore
) -> None:
    existing = await seed.enqueue_many(producer, 40, "q")
    seen: list[str] = []
    inserted: list[str] = []
    cursor = None
    while True:
        page = await producer.list_jobs(ListQuery(limit=6, cursor=cursor))
        seen += ids(page.items)
        # Another producer keeps adding jobs, to this queue and a new one.
        inserted += ids(await seed.enqueue_many(producer, 3, "q"))
        inserted += ids(await seed.enqueue_many(producer, 1, "other"))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)), "a job was listed twice"
    assert set(ids(existing)) <= set(seen), "a job that existed before was missed"
    assert seen == sorted(seen, reverse=True)
    assert set(seen) - set(ids(existing)) <= set(inserted)
    await assert_invariants(r, keys, ["q", "other"])


async def test_index_entries_whose_hash_is_gone_are_skipped(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    """A finished job whose hash expired stays in the indexes until expire.lua runs."""
    kept = await seed.enqueue(producer, "q")
    gone = await seed.enqueue(producer, "q")
    await producer.cancel(gone.id)
    await r.delete(keys.queue("q").job(gone.id))  # its retention ran out
    for query in (ListQuery(), ListQuery(statuses=(Status.CANCELED, Status.PENDING))):
        page = await producer.list_jobs(query)
        assert ids(page.items) == [kept.id]
    with pytest.raises(JobNotFound):
        await producer.get(gone.id)
    await assert_invariants(r, keys, ["q"])


async def test_get_finds_a_job_in_any_queue(r: Redis, keys: Keys, producer: ProducerStore) -> None:
    a = await seed.enqueue(producer, "a", payload={"k": 1})
    b = await seed.enqueue(producer, "b")
    assert (await producer.get(a.id)).payload == {"k": 1}
    assert (await producer.get(b.id)).queue == "b"
    assert (await producer.get(b.id, "b")).id == b.id
    with pytest.raises(JobNotFound):
        await producer.get(b.id, "a")
    with pytest.raises(JobNotFound):
        await producer.get(new_job_id())
    await assert_invariants(r, keys, ["a", "b"])
