"""SyncConveyorTest: the harness from a synchronous test, with a SyncClient."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import conveyor
from conveyor.errors import ConfigError
from conveyor.testing import DrainTimeout, SyncConveyorTest
from conveyor.worker.registry import Registry

registry = Registry()


@registry.handler("s.upper")
def upper(ctx: conveyor.JobContext, payload: Any) -> Any:
    return payload.upper()


@registry.handler("s.once", max_attempts=2)
def once(ctx: conveyor.JobContext, payload: Any) -> Any:
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return ctx.attempt


def test_a_sync_test_enqueues_drains_and_reads_the_result() -> None:
    with SyncConveyorTest(handlers=[upper], registry=registry) as cv:
        job = cv.client.enqueue("s.upper", "abc")
        ran = cv.drain()
        done = cv.client.get(job.id)
    assert [r.status for r in ran] == ["completed"]
    assert done.status is conveyor.Status.COMPLETED
    assert done.result == "ABC"


def test_retries_and_the_clock_work_as_in_the_async_harness() -> None:
    with SyncConveyorTest(handlers=["s.once"], registry=registry) as cv:
        job = cv.client.enqueue("s.once", None)
        assert [r.status for r in cv.drain()] == ["retrying"]
        assert cv.client.get(job.id).status is conveyor.Status.RETRYING
        cv.drain(include_delayed=True)
        done = cv.client.get(job.id)
    assert (done.status, done.result, done.attempts) == (conveyor.Status.COMPLETED, 2, 2)


def test_a_drain_timeout_reaches_the_sync_caller() -> None:
    local = Registry()

    @local.handler("s.block")
    async def block(ctx: conveyor.JobContext, payload: Any) -> Any:
        await asyncio.sleep(30)

    with SyncConveyorTest(registry=local) as cv:
        cv.client.enqueue("s.block", None)
        with pytest.raises(DrainTimeout):
            cv.drain(timeout=0.2)


def test_bad_options_raise_and_leave_no_loop_running() -> None:
    with pytest.raises(ConfigError, match="concurrency"):
        SyncConveyorTest(registry=registry, concurrency=0)
    assert not [t for t in threading.enumerate() if t.name == "conveyor-test"]
