"""The Python producer client against a real Redis: same jobs as the API makes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.client import Client, SyncClient
from shared.errors import InvalidTransition, JobNotFound, PayloadTooLarge, ValidationError
from shared.ids import new_job_id
from shared.states import Status
from shared.store.producer import CancelOutcome

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
