"""Typed tasks against a real Redis: `Task.enqueue` validates before anything is written,
and the worker loads a typed payload before the handler runs, failing for good a stored
payload that does not fit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pydantic
import pytest
from redis.asyncio import Redis

from conveyor.client import Client, SyncClient
from conveyor.errors import ValidationError
from conveyor.job import Outcome
from conveyor.states import Status
from conveyor.store.producer import ProducerStore
from conveyor.worker.context import JobContext
from conveyor.worker.registry import Registry
from conveyor.worker.runtime import Worker
from conveyor.worker.task import Task
from tests.worker.support import enqueue, running, wait_status, worker_settings

pytestmark = pytest.mark.anyio


class BuildRequest(pydantic.BaseModel):
    month: str
    pages: int = 1


@dataclass
class Resize:
    width: int
    formats: list[str] = field(default_factory=list)


@dataclass
class Handlers:
    registry: Registry
    build: Task[BuildRequest, Coroutine[Any, Any, dict[str, object]]]
    resize: Task[Resize, int]
    plain: Task[Any, Any]
    seen: list[object]  # the payloads the handlers were called with


def handlers() -> Handlers:
    registry = Registry()
    seen: list[object] = []

    @registry.handler("build")
    async def build(ctx: JobContext, payload: BuildRequest) -> dict[str, object]:
        seen.append(payload)
        return {"month": payload.month, "pages": payload.pages}

    @registry.handler("resize")
    def resize(ctx: JobContext, payload: Resize) -> int:  # a sync handler: in a thread
        seen.append(payload)
        return payload.width * 2

    @registry.handler("plain")
    async def plain(ctx: JobContext, payload: Any) -> Any:
        seen.append(payload)
        return payload

    return Handlers(registry, build, resize, plain, seen)


async def key_count(r: Redis, prefix: str) -> int:
    return len([k async for k in r.scan_iter(match=f"{prefix}:*", count=1000)])


@pytest.fixture
async def client(redis_url: str, prefix: str) -> AsyncIterator[Client]:
    async with Client.from_url(redis_url, key_prefix=prefix) as c:
        yield c


async def test_typed_tasks_enqueue_and_their_handlers_get_the_typed_payload(
    redis_url: str, prefix: str, producer: ProducerStore, client: Client
) -> None:
    h = handlers()
    build = await h.build.enqueue(client, BuildRequest(month="2026-11"), max_attempts=2)
    resize = await h.resize.enqueue(client, Resize(640, ["png"]), queue="default")
    plain = await h.plain.enqueue(client, {"anything": [1, "x"]}, delay_seconds=0)
    assert build.payload == {"month": "2026-11", "pages": 1}  # the model's JSON
    assert (build.type, build.max_attempts) == ("build", 2)
    assert resize.payload == {"width": 640, "formats": ["png"]}
    assert plain.payload == {"anything": [1, "x"]}  # a plain payload as it is
    async with running(Worker(worker_settings(redis_url, prefix), h.registry)):
        jobs = [await wait_status(producer, j.id, Status.COMPLETED) for j in (build, resize, plain)]
    assert [j.result for j in jobs] == [{"month": "2026-11", "pages": 1}, 1280, plain.payload]
    assert sorted(map(repr, h.seen)) == sorted(
        map(repr, [BuildRequest(month="2026-11"), Resize(640, ["png"]), plain.payload])
    )


async def test_an_invalid_payload_is_refused_on_enqueue_and_nothing_is_written(
    r: Redis, prefix: str, client: Client
) -> None:
    h = handlers()
    with pytest.raises(ValidationError) as caught:
        await h.build.enqueue(client, {"pages": "many"})  # type: ignore[arg-type]
    assert caught.value.field == "payload.month"
    assert [e.field for e in caught.value.errors] == ["payload.month", "payload.pages"]  # type: ignore[attr-defined]
    with pytest.raises(ValidationError) as caught:
        await h.resize.enqueue(client, Resize("wide"))  # type: ignore[arg-type]
    assert caught.value.field == "payload.width"
    assert await key_count(r, prefix) == 0


async def test_the_sync_client_enqueues_through_enqueue_sync(redis_url: str, prefix: str) -> None:
    h = handlers()
    sync_client = await asyncio.to_thread(SyncClient.from_url, redis_url, key_prefix=prefix)
    try:
        job = await asyncio.to_thread(
            h.build.enqueue_sync, sync_client, BuildRequest(month="2026-12", pages=3)
        )
        assert job.payload == {"month": "2026-12", "pages": 3}
        with pytest.raises(ValidationError, match=r"payload\.month"):
            await asyncio.to_thread(h.build.enqueue_sync, sync_client, {})  # type: ignore[arg-type]
        # The wrong method for the client's kind is refused before anything is sent.
        with pytest.raises(TypeError, match="blocking client: use enqueue_sync"):
            await h.build.enqueue(sync_client, BuildRequest(month="x"))  # type: ignore[arg-type]
    finally:
        await asyncio.to_thread(sync_client.close)
    async with Client.from_url(redis_url, key_prefix=prefix) as client:
        with pytest.raises(TypeError, match="async client"):
            h.build.enqueue_sync(client, BuildRequest(month="x"))  # type: ignore[arg-type]
        page = await client.list()
    assert [j.id for j in page.items] == [job.id]  # the refused calls wrote nothing


async def test_a_stored_payload_that_does_not_fit_fails_the_job_for_good(
    redis_url: str, prefix: str, producer: ProducerStore
) -> None:
    h = handlers()
    # Written without the task (another producer, an older version): nothing checked it.
    bad_model = await enqueue(producer, "build", {"pages": "many"}, max_attempts=5)
    bad_dataclass = await enqueue(producer, "resize", {"width": 1, "formats": [3]})
    not_an_object = await enqueue(producer, "build", 42)
    async with running(Worker(worker_settings(redis_url, prefix), h.registry)):
        jobs = [
            await wait_status(producer, job_id, Status.FAILED)
            for job_id in (bad_model, bad_dataclass, not_an_object)
        ]
    for job in jobs:
        assert job.attempts == 1  # not retried, though attempts remained
        assert [a.outcome for a in job.history] == [Outcome.FAILED]
        assert job.last_error is not None
        assert job.last_error.startswith("PayloadRejected: the payload is not a valid ")
    assert jobs[0].last_error == (
        "PayloadRejected: the payload is not a valid BuildRequest: payload.month: Field "
        "required; payload.pages: Input should be a valid integer, unable to parse string "
        "as an integer"
    )
    assert jobs[1].last_error is not None
    assert "Resize: payload.formats.0: Input should be a valid string" in jobs[1].last_error
    assert jobs[2].last_error is not None
    assert "BuildRequest: payload: Input should be a valid dictionary" in jobs[2].last_error
    assert h.seen == []  # no handler ran
