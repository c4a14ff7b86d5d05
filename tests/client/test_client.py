"""The Python producer client against a real Redis: same jobs as the API makes."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from conveyor.client import Client, SyncClient
from conveyor.errors import (
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    PayloadTooLarge,
    ValidationError,
)
from conveyor.ids import new_job_id
from conveyor.states import Status
from conveyor.store.keys import Keys
from conveyor.store.workers import WorkerRegistry
from conveyor.values import CancelOutcome
from tests.helpers.wait import eventually

pytestmark = pytest.mark.anyio


async def test_enqueue_get_cancel_list(redis_url: str, prefix: str) -> None:
    async with Client.from_url(redis_url, key_prefix=prefix) as client:
        job = await client.enqueue("echo", {"n": 1}, queue="emails", max_attempts=4)
        assert job.status is Status.PENDING
        assert job.queue == "emails"
        fetched = await client.get(job.id)
        assert fetched.payload == {"n": 1}
        assert fetched.max_attempts == 4
        outcome, canceled = await client.cancel(job.id)
        assert outcome is CancelOutcome.CANCELED
        assert canceled.status is Status.CANCELED
        with pytest.raises(InvalidTransition):
            await client.cancel(job.id)
        page = await client.list(status="canceled")
        assert [j.id for j in page.items] == [job.id]


async def test_enqueue_many_is_ordered_and_validated_first(redis_url: str, prefix: str) -> None:
    async with Client.from_url(redis_url, key_prefix=prefix) as client:
        jobs = await client.enqueue_many([("echo", i) for i in range(300)])
        assert [j.payload for j in jobs] == list(range(300))
        assert len({j.id for j in jobs}) == 300
        with pytest.raises(ValidationError) as err:
            await client.enqueue_many([("echo", 1), ("bad{type}", 2)])
        assert err.value.field == "jobs/1/type"
        page = await client.list(limit=500)
        assert len(page.items) == 300  # the refused batch wrote nothing


async def test_delays_and_bad_input(redis_url: str, prefix: str) -> None:
    async with Client.from_url(redis_url, key_prefix=prefix, max_payload_bytes=1024) as client:
        later = await client.enqueue("echo", delay_seconds=60)
        assert later.status is Status.SCHEDULED
        at = await client.enqueue("echo", run_at=datetime.now(UTC) + timedelta(hours=1))
        assert at.status is Status.SCHEDULED
        past = await client.enqueue("echo", run_at=datetime.now(UTC) - timedelta(hours=1))
        assert past.status is Status.PENDING
        with pytest.raises(ValidationError):
            await client.enqueue("echo", run_at=datetime(2030, 1, 1))  # naive
        with pytest.raises(ValidationError):
            await client.enqueue("echo", delay_seconds=1, run_at=datetime.now(UTC))
        with pytest.raises(ValidationError):
            await client.enqueue("echo", max_attempts=0)
        with pytest.raises(PayloadTooLarge):
            await client.enqueue("echo", "x" * 2000)
        with pytest.raises(JobNotFound):
            await client.get(new_job_id())


def test_sync_client(redis_url: str, prefix: str) -> None:
    with SyncClient.from_url(redis_url, key_prefix=prefix) as client:
        job = client.enqueue("echo", {"hello": "world"})
        assert client.get(job.id).payload == {"hello": "world"}
        assert len(client.enqueue_many([("echo", 1), ("echo", 2)])) == 2
        assert len(client.list(limit=10).items) == 3


def test_sync_client_leaves_no_thread_behind(redis_url: str, prefix: str) -> None:
    def new_threads(before: set[threading.Thread]) -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t not in before and t.is_alive()}

    before = set(threading.enumerate())
    client = SyncClient.from_url(redis_url, key_prefix=prefix)
    [loop_thread] = new_threads(before)
    client.close()
    client.close()  # a second close does nothing
    assert not loop_thread.is_alive()

    def boom() -> Client:
        raise ValueError("no client today")

    with pytest.raises(ValueError, match="no client today"):
        SyncClient(boom)
    eventually(lambda: not new_threads(before), timeout=5, what="the loop's thread ended")


async def test_idempotency_key_returns_the_first_job(redis_url: str, prefix: str) -> None:
    async with Client.from_url(redis_url, key_prefix=prefix) as client:
        first = await client.enqueue("echo", {"n": 1}, idempotency_key="order-7")
        again = await client.enqueue("echo", {"n": 1}, idempotency_key="order-7")
        assert again.id == first.id
        with pytest.raises(IdempotencyConflict) as exc:
            await client.enqueue("echo", {"n": 2}, idempotency_key="order-7")
        assert (exc.value.key, exc.value.job_id) == ("order-7", first.id)
        other_queue = await client.enqueue("echo", {"n": 1}, queue="q2", idempotency_key="order-7")
        assert other_queue.id != first.id
        jobs = await client.enqueue_many(
            [("echo", {"n": 1}, {"idempotency_key": "order-7"}), ("echo", 2)]
        )
        assert jobs[0].id == first.id
        assert len((await client.list(limit=10)).items) == 3
        with pytest.raises(ValidationError) as err:
            await client.enqueue("echo", idempotency_key="has space")
        assert err.value.field == "idempotency_key"
        with pytest.raises(ValidationError) as err:
            await client.enqueue_many([("echo", 1, {"idempotency_key": ""})])
        assert err.value.field == "jobs/0/idempotency_key"


async def test_replay_queues_and_workers(redis_url: str, prefix: str) -> None:
    async with Client.from_url(redis_url, key_prefix=prefix) as client:
        job = await client.enqueue("echo", queue="b")
        await client.enqueue("echo", queue="a", delay_seconds=60)
        with pytest.raises(InvalidTransition):
            await client.replay(job.id)
        await client.cancel(job.id)
        replayed = await client.replay(job.id)
        assert replayed.status is Status.PENDING
        with pytest.raises(JobNotFound):
            await client.replay(new_job_id())
        with pytest.raises(ValidationError):
            await client.replay("not-an-id")

        stats = await client.queues()
        assert [(s.name, s.waiting, s.scheduled, s.canceled) for s in stats] == [
            ("a", 0, 1, 0),
            ("b", 1, 0, 0),
        ]
        b = await client.queue("b")
        assert b is not None
        assert replace(b, oldest_waiting_age_seconds=None) == replace(
            stats[1], oldest_waiting_age_seconds=None
        )
        assert await client.queue("nope") is None
        with pytest.raises(ValidationError):
            await client.queue("bad{name}")

        assert await client.workers() == []
        registry = WorkerRegistry(client.redis, Keys(prefix))
        await registry.beat("w1", {"host": "h", "pid": 12, "queues": "a,b"}, 5.0)
        [worker] = await client.workers()
        assert (worker.id, worker.host, worker.pid, worker.queues) == ("w1", "h", 12, ("a", "b"))


def test_sync_client_replay_queues_and_workers(redis_url: str, prefix: str) -> None:
    with SyncClient.from_url(redis_url, key_prefix=prefix) as client:
        job = client.enqueue("echo", idempotency_key="k")
        assert client.enqueue("echo", idempotency_key="k").id == job.id
        client.cancel(job.id)
        assert client.replay(job.id).status is Status.PENDING
        [stats] = client.queues()
        single = client.queue("default")
        assert single is not None
        assert (stats.name, stats.waiting, single.name, single.waiting) == (
            "default", 1, "default", 1,
        )  # fmt: skip
        assert client.workers() == []


async def test_limits_and_limit_key_through_the_client(redis_url: str, prefix: str) -> None:
    async with Client.from_url(redis_url, key_prefix=prefix) as client:
        assert await client.set_limit("emails", "tenant-1", max_running=2) is True
        assert await client.set_limit("emails", "queue", max_per_second=5, burst=2) is True
        with pytest.raises(ValidationError) as exc:
            await client.set_limit("emails", "queue", burst=2)
        assert exc.value.field == "burst"
        job = await client.enqueue("echo", None, queue="emails", limit_key="tenant-1")
        assert (await client.get(job.id)).limit_key == "tenant-1"
        with pytest.raises(ValidationError) as exc:
            await client.enqueue("echo", None, limit_key="queue")
        assert exc.value.field == "limit_key"
        states = [s.to_json() for s in await client.limits("emails")]
        assert states == [
            {"key": "queue", "max_per_second": 5.0, "burst": 2, "running": 0, "held": 0},
            {"key": "tenant-1", "max_running": 2, "running": 0, "held": 0},
        ]
        assert await client.delete_limit("emails", "tenant-1") is True
    with SyncClient.from_url(redis_url, key_prefix=prefix) as sync:
        assert [s.key for s in sync.limits("emails")] == ["queue"]
        assert sync.delete_limit("emails", "queue") is True
        assert sync.set_limit("emails", "type:echo", max_running=1) is True
