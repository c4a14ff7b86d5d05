"""The Redis clients and the HTTP clients answer alike: the same values for the same jobs,
queues and workers, and the same errors, against one real API and its Redis.

Every client is typed as the protocol of `conveyor.client_api`, so mypy checks that each
class implements it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from conveyor.client import Client, SyncClient
from conveyor.client_api import AsyncJobsClient, ListFilter, SyncJobsClient
from conveyor.errors import InvalidTransition, JobNotFound, ValidationError
from conveyor.http_client import HttpClient, SyncHttpClient
from conveyor.ids import new_job_id
from conveyor.states import Status
from conveyor.store.keys import Keys
from conveyor.store.workers import WorkerRegistry
from conveyor.values import CancelOutcome, QueueStats
from tests.cli.conftest import Api


def _same_queue(a: QueueStats | None, b: QueueStats | None) -> None:
    """Equal statistics; the age of the oldest waiting job grows between two reads, so it
    is compared only as present or absent."""
    assert a is not None
    assert b is not None
    assert (a.oldest_waiting_age_seconds is None) == (b.oldest_waiting_age_seconds is None)
    assert replace(a, oldest_waiting_age_seconds=None) == replace(
        b, oldest_waiting_age_seconds=None
    )


@pytest.fixture
async def async_clients(api: Api) -> AsyncIterator[tuple[AsyncJobsClient, AsyncJobsClient]]:
    redis: AsyncJobsClient = Client.from_url(api.redis_url, key_prefix=api.prefix)
    http: AsyncJobsClient = HttpClient(api.url)
    async with redis, http:
        yield redis, http


@pytest.fixture
def sync_clients(api: Api) -> Iterator[tuple[SyncJobsClient, SyncJobsClient]]:
    redis: SyncJobsClient = SyncClient.from_url(api.redis_url, key_prefix=api.prefix)
    http: SyncJobsClient = SyncHttpClient(api.url)
    with redis, http:
        yield redis, http


@pytest.mark.anyio
async def test_async_clients_return_equal_jobs_pages_and_queues(
    async_clients: tuple[AsyncJobsClient, AsyncJobsClient], queue: str
) -> None:
    redis, http = async_clients
    by_redis = await redis.enqueue("echo", {"n": 1}, queue=queue, max_attempts=3)
    by_http = await http.enqueue("echo", {"n": 2}, queue=queue, timeout_seconds=2.5)
    for job in (by_redis, by_http):
        assert await redis.get(job.id) == await http.get(job.id) == job
    later = await http.enqueue("echo", queue=queue, delay_seconds=600, correlation_id="c-1")
    batch = await redis.enqueue_many(
        [("echo", 3, {"queue": queue}), ("echo", 4, {"queue": queue})], correlation_id="c-2"
    )
    assert [j.correlation_id for j in (later, *batch)] == ["c-1", "c-2", "c-2"]

    outcome, canceled = await http.cancel(by_redis.id)
    assert outcome is CancelOutcome.CANCELED
    assert await redis.get(by_redis.id) == canceled
    replayed = await redis.replay(by_redis.id)
    assert replayed.status is Status.PENDING
    assert await http.get(by_redis.id) == replayed

    cases: list[ListFilter] = [
        {"queue": queue},
        {"queue": queue, "status": "scheduled"},
        {"queue": queue, "status": ["pending", "scheduled"], "limit": 2},
        {"queue": queue, "type": "echo", "limit": 3},
        {
            "queue": queue,
            "created_after": datetime.now(UTC) - timedelta(minutes=5),
            "created_before": datetime.now(UTC) + timedelta(minutes=5),
            "limit": 1,
        },
    ]
    for filters in cases:
        from_redis = await redis.list(**filters)
        assert from_redis == await http.list(**filters)
        assert from_redis.items
    first = await redis.list(queue=queue, limit=2)
    assert first.next_cursor is not None
    rest = await redis.list(queue=queue, cursor=first.next_cursor)
    assert rest == await http.list(queue=queue, cursor=first.next_cursor)
    assert len(first.items) + len(rest.items) == 5
    yesterday = datetime.now(UTC) - timedelta(days=1)
    gone = await redis.list(queue=queue, created_before=yesterday)
    assert gone.items == []
    assert gone == await http.list(queue=queue, created_before=yesterday)

    _same_queue(await redis.queue(queue), await http.queue(queue))
    [mine_redis] = [q for q in await redis.queues() if q.name == queue]
    [mine_http] = [q for q in await http.queues() if q.name == queue]
    _same_queue(mine_redis, mine_http)
    assert mine_redis.scheduled == 1
    assert await redis.queue(f"{queue}-none") is None
    assert await http.queue(f"{queue}-none") is None


@pytest.mark.anyio
async def test_async_clients_raise_the_same_errors(
    async_clients: tuple[AsyncJobsClient, AsyncJobsClient], queue: str
) -> None:
    pending = await async_clients[0].enqueue("echo", queue=queue)
    for client in async_clients:
        with pytest.raises(JobNotFound):
            await client.get(new_job_id())
        with pytest.raises(InvalidTransition):
            await client.replay(pending.id)
        bad: list[tuple[ListFilter, str]] = [
            ({"status": "sleeping"}, "status"),
            ({"limit": 0}, "limit"),
            ({"limit": 501}, "limit"),
            ({"cursor": "nope"}, "cursor"),
            ({"created_after": datetime(2030, 1, 1)}, "created_after"),
        ]
        for filters, field in bad:
            with pytest.raises(ValidationError) as err:
                await client.list(**filters)
            assert err.value.field == field
        with pytest.raises(ValidationError) as unknown:
            await client.list(colour="red")  # type: ignore[call-arg]
        assert unknown.value.field == "colour"
        with pytest.raises(ValidationError) as bad_option:
            await client.enqueue("echo", colour="red")  # type: ignore[call-arg]
        assert bad_option.value.field == "colour"
        with pytest.raises(ValidationError) as bad_item:
            await client.enqueue_many([("echo", 1), ("echo", 2, {"correlation_id": "x"})])
        assert bad_item.value.field == "jobs/1/correlation_id"
        with pytest.raises(ValidationError):
            await client.queue("bad{name}")
    assert await async_clients[1].get(pending.id) == pending  # nothing was changed


def test_sync_clients_return_equal_workers_and_jobs(
    sync_clients: tuple[SyncJobsClient, SyncJobsClient], api: Api, queue: str
) -> None:
    redis, http = sync_clients
    worker_id = f"w-{uuid.uuid4().hex[:8]}"

    async def beat() -> None:
        async with Client.from_url(api.redis_url, key_prefix=api.prefix) as client:
            registry = WorkerRegistry(client.redis, Keys(api.prefix))
            info: dict[str, str | int | float] = {"host": "h1", "pid": 42, "concurrency": 4}
            info["queues"] = f"{queue},other"
            await registry.beat(worker_id, info, 30.0)

    anyio.run(beat)
    [from_redis] = [w for w in redis.workers() if w.id == worker_id]
    [from_http] = [w for w in http.workers() if w.id == worker_id]
    assert from_redis == from_http
    assert (from_redis.host, from_redis.pid, from_redis.queues) == ("h1", 42, (queue, "other"))
    assert from_redis.concurrency == 4
    assert from_redis.last_seen is not None

    job = http.enqueue("echo", [1, 2], queue=queue, idempotency_key="k-1")
    assert redis.enqueue("echo", [1, 2], queue=queue, idempotency_key="k-1") == job
    assert redis.get(job.id) == http.get(job.id) == job
    outcome, canceled = redis.cancel(job.id)
    assert outcome is CancelOutcome.CANCELED
    assert http.list(queue=queue, status="canceled") == redis.list(queue=queue, status="canceled")
    assert http.replay(canceled.id) == redis.get(job.id)
    _same_queue(redis.queue(queue), http.queue(queue))
