"""ConveyorTest: whole job flows through the real client, claim, executor and scripts."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest

import conveyor
from conveyor.backoff import Jitter, RetryPolicy
from conveyor.errors import ConfigError, ValidationError
from conveyor.job import Outcome
from conveyor.testing import AttemptResult, ConveyorTest, DrainTimeout, harness
from conveyor.worker.registry import Registry
from tests.helpers.wait import eventually_async

pytestmark = pytest.mark.anyio

registry = Registry()
calls: dict[str, list[int]] = {}


def _seen(ctx: conveyor.JobContext) -> None:
    calls.setdefault(ctx.job_id, []).append(ctx.attempt)


@registry.handler("t.double")
async def double(ctx: conveyor.JobContext, payload: Any) -> Any:
    _seen(ctx)
    return payload["n"] * 2


@registry.handler("t.flaky", max_attempts=4)
async def flaky(ctx: conveyor.JobContext, payload: Any) -> Any:
    """Fails on attempts 1..payload['failures'], then succeeds."""
    _seen(ctx)
    if ctx.attempt <= payload["failures"]:
        raise RuntimeError(f"attempt {ctx.attempt} failed")
    return {"attempt": ctx.attempt}


@registry.handler("t.refuse")
async def refuse(ctx: conveyor.JobContext, payload: Any) -> Any:
    _seen(ctx)
    raise conveyor.PermanentError("never")


@registry.handler("t.slow", timeout=0.05, max_attempts=2)
async def slow(ctx: conveyor.JobContext, payload: Any) -> Any:
    _seen(ctx)
    await asyncio.sleep(30)


@registry.handler("t.sync")
def sync_words(ctx: conveyor.JobContext, payload: Any) -> Any:
    _seen(ctx)
    return {"thread": threading.current_thread() is not threading.main_thread()}


@registry.handler("t.fanout")
async def fanout(ctx: conveyor.JobContext, payload: Any) -> Any:
    """Enqueues one t.double job per number, through the client of the payload's test."""
    client = _clients[payload["test"]]
    jobs = [await client.enqueue("t.double", {"n": n}) for n in payload["numbers"]]
    return [job.id for job in jobs]


_clients: dict[str, conveyor.Client] = {}


def _harness(**options: Any) -> ConveyorTest:
    return ConveyorTest(registry=registry, **options)


async def test_a_job_completes_with_its_result() -> None:
    async with _harness(handlers=[double]) as cv:
        job = await cv.client.enqueue("t.double", {"n": 21})
        ran = await cv.drain()
        done = await cv.client.get(job.id)
    assert ran == [AttemptResult(job.id, "t.double", 1, "completed")]
    assert done.status is conveyor.Status.COMPLETED
    assert done.result == 42
    assert done.attempts == 1
    assert [a.outcome for a in done.history] == [Outcome.COMPLETED]


async def test_drain_on_an_empty_queue_runs_nothing() -> None:
    async with _harness() as cv:
        assert await cv.drain() == []


async def test_a_failed_attempt_waits_for_its_retry_until_delays_are_included() -> None:
    async with _harness(handlers=["t.flaky"]) as cv:
        job = await cv.client.enqueue("t.flaky", {"failures": 2})
        first = await cv.drain()
        waiting = await cv.client.get(job.id)
        assert [r.status for r in first] == ["retrying"]
        assert first[0].error == "RuntimeError: attempt 1 failed"
        assert waiting.status is conveyor.Status.RETRYING
        assert waiting.next_run_at is not None
        assert waiting.max_attempts == 4  # the handler's limit, recorded when it was claimed
        assert await cv.drain() == []  # not due yet: drain does not wait for it

        rest = await cv.drain(include_delayed=True)
        done = await cv.client.get(job.id)
    assert [(r.attempt, r.status) for r in rest] == [(2, "retrying"), (3, "completed")]
    assert done.status is conveyor.Status.COMPLETED
    assert done.result == {"attempt": 3}
    assert calls[job.id] == [1, 2, 3]
    assert [a.outcome for a in done.history] == [Outcome.FAILED, Outcome.FAILED, "completed"]


async def test_a_job_that_keeps_failing_fails_after_its_last_attempt() -> None:
    async with _harness(handlers=[flaky]) as cv:
        job = await cv.client.enqueue("t.flaky", {"failures": 99}, max_attempts=2)
        ran = await cv.drain(include_delayed=True)
        done = await cv.client.get(job.id)
    assert [r.status for r in ran] == ["retrying", "failed"]
    assert done.status is conveyor.Status.FAILED
    assert done.attempts == 2
    assert done.last_error == "RuntimeError: attempt 2 failed"


async def test_a_permanent_error_fails_the_job_at_once() -> None:
    async with _harness(handlers=[refuse]) as cv:
        job = await cv.client.enqueue("t.refuse", None)
        await cv.drain(include_delayed=True)
        done = await cv.client.get(job.id)
    assert done.status is conveyor.Status.FAILED
    assert done.attempts == 1
    assert done.last_error == "PermanentError: never"


async def test_an_attempt_past_its_timeout_times_out_and_is_retried() -> None:
    async with _harness(handlers=[slow]) as cv:
        job = await cv.client.enqueue("t.slow", None)
        ran = await cv.drain(include_delayed=True)
        done = await cv.client.get(job.id)
    assert [r.status for r in ran] == ["retrying", "failed"]
    assert done.status is conveyor.Status.FAILED
    assert [a.outcome for a in done.history] == [Outcome.TIMED_OUT, Outcome.TIMED_OUT]
    assert done.last_error == "timed out after 0.05s"


async def test_a_pending_job_canceled_never_runs() -> None:
    async with _harness(handlers=[double]) as cv:
        job = await cv.client.enqueue("t.double", {"n": 1})
        outcome, _ = await cv.client.cancel(job.id)
        ran = await cv.drain()
        done = await cv.client.get(job.id)
    assert outcome.value == "canceled"
    assert ran == []
    assert job.id not in calls
    assert done.status is conveyor.Status.CANCELED


async def test_a_running_job_canceled_stops_and_ends_canceled() -> None:
    started = asyncio.Event()
    local = Registry()

    @local.handler("t.wait")
    async def wait(ctx: conveyor.JobContext, payload: Any) -> Any:
        started.set()
        await asyncio.sleep(30)

    async with ConveyorTest(registry=local) as cv:
        job = await cv.client.enqueue("t.wait", None)
        draining = asyncio.create_task(cv.drain(timeout=10))
        await asyncio.wait_for(started.wait(), 10)
        outcome, _ = await cv.client.cancel(job.id)
        ran = await draining
        done = await cv.client.get(job.id)
    assert outcome.value == "requested"
    assert [r.status for r in ran] == ["canceled"]
    assert done.status is conveyor.Status.CANCELED
    assert [a.outcome for a in done.history] == [Outcome.CANCELED]


async def test_a_running_sync_handler_sees_its_cancel_and_ends_canceled() -> None:
    started = threading.Event()
    local = Registry()

    @local.handler("t.loop")
    def loop(ctx: conveyor.JobContext, payload: Any) -> Any:
        started.set()
        while not ctx.cancelled.wait(0.01):
            pass
        ctx.raise_if_cancelled()

    async with ConveyorTest(registry=local) as cv:
        job = await cv.client.enqueue("t.loop", None)
        draining = asyncio.create_task(cv.drain(timeout=10))
        assert await asyncio.to_thread(started.wait, 10)
        await cv.client.cancel(job.id)
        ran = await draining
        done = await cv.client.get(job.id)
    assert [r.status for r in ran] == ["canceled"]
    assert done.status is conveyor.Status.CANCELED


async def test_a_sync_handler_runs_in_a_thread() -> None:
    async with _harness(handlers=[sync_words]) as cv:
        job = await cv.client.enqueue("t.sync", None)
        await cv.drain()
        done = await cv.client.get(job.id)
    assert done.result == {"thread": True}


async def test_jobs_enqueued_by_a_handler_run_in_the_same_drain() -> None:
    async with _harness(handlers=[fanout, double]) as cv:
        test = uuid.uuid4().hex
        _clients[test] = cv.client
        job = await cv.client.enqueue("t.fanout", {"test": test, "numbers": [1, 2]})
        ran = await cv.drain()
        children = (await cv.client.get(job.id)).result
        assert isinstance(children, list)
        results = [(await cv.client.get(child)).result for child in children]
    assert [r.job_type for r in ran] == ["t.fanout", "t.double", "t.double"]
    assert results == [2, 4]


async def test_a_type_not_selected_fails_as_on_a_worker_without_its_handler() -> None:
    async with _harness(handlers=[double]) as cv:
        job = await cv.client.enqueue("t.sync", None)
        await cv.drain(include_delayed=True)
        done = await cv.client.get(job.id)
    assert done.status is conveyor.Status.FAILED
    assert done.last_error == "no handler is registered for job type 't.sync'"
    assert job.id not in calls


async def test_a_scheduled_job_runs_only_when_delays_are_included() -> None:
    async with _harness(handlers=[double]) as cv:
        job = await cv.client.enqueue("t.double", {"n": 4}, delay_seconds=3600)
        assert await cv.drain() == []
        assert await cv.promote_due() == 0  # an hour early, by the clock
        assert (await cv.client.get(job.id)).status is conveyor.Status.SCHEDULED
        await cv.drain(include_delayed=True)
        done = await cv.client.get(job.id)
    assert done.status is conveyor.Status.COMPLETED
    assert done.result == 8


async def test_promote_due_moves_what_the_clock_says_is_due() -> None:
    async with _harness(handlers=[double]) as cv:
        job = await cv.client.enqueue("t.double", {"n": 5}, delay_seconds=0.05)
        await eventually_async(cv.promote_due, what="the delayed job promoted")
        assert (await cv.client.get(job.id)).status is conveyor.Status.PENDING
        await cv.drain()
        assert (await cv.client.get(job.id)).result == 10


async def test_only_the_worker_queues_are_drained() -> None:
    async with _harness(handlers=[double], queues=["fast", "slow"]) as cv:
        fast = await cv.client.enqueue("t.double", {"n": 1}, queue="fast")
        slow = await cv.client.enqueue("t.double", {"n": 2}, queue="slow")
        other = await cv.client.enqueue("t.double", {"n": 3}, queue="elsewhere")
        await cv.drain()
        statuses = [(await cv.client.get(j.id)).status for j in (fast, slow, other)]
    assert statuses == [conveyor.Status.COMPLETED] * 2 + [conveyor.Status.PENDING]


async def test_worker_defaults_apply_to_jobs_and_handlers_without_their_own() -> None:
    policy = RetryPolicy(base_seconds=0.5, jitter=Jitter.NONE)
    async with _harness(handlers=[refuse, double], max_attempts=7, retry=policy) as cv:
        job = await cv.client.enqueue("t.double", {"n": "x"})  # "x" * 2 is "xx": completes
        bad = await cv.client.enqueue("t.double", None)  # None["n"]: a TypeError
        ran = await cv.drain()
        failed = await cv.client.get(bad.id)
        assert (await cv.client.get(job.id)).result == "xx"
    assert {r.status for r in ran} == {"completed", "retrying"}
    assert failed.max_attempts == 7  # the worker default, recorded when it was claimed
    assert failed.next_run_at is not None
    assert failed.updated_at is not None
    assert 450 <= failed.next_run_at - failed.updated_at <= 550  # 0.5 s, no jitter


async def test_drain_raises_when_the_queues_do_not_become_idle() -> None:
    local = Registry()

    @local.handler("t.forever")
    async def forever(ctx: conveyor.JobContext, payload: Any) -> Any:
        await asyncio.sleep(30)

    async with ConveyorTest(registry=local) as cv:
        job = await cv.client.enqueue("t.forever", None)
        with pytest.raises(DrainTimeout, match=f"still running: {job.id}") as caught:
            await cv.drain(timeout=0.2)
        assert caught.value.running == [job.id]
        assert (await cv.client.get(job.id)).status is conveyor.Status.RUNNING


async def test_the_sync_client_shares_the_in_memory_server() -> None:
    async with _harness(handlers=[double]) as cv:
        with cv.sync_client() as client:
            job = await asyncio.to_thread(client.enqueue, "t.double", {"n": 8})
            await cv.drain()
            done = await asyncio.to_thread(client.get, job.id)
    assert done.status is conveyor.Status.COMPLETED
    assert done.result == 16


async def test_each_harness_has_its_own_server() -> None:
    async with _harness() as one, _harness() as two:
        job = await one.client.enqueue("t.double", {"n": 1})
        with pytest.raises(conveyor.JobNotFound):
            await two.client.get(job.id)


def test_handlers_not_in_the_registry_are_refused_by_name() -> None:
    async def loose(ctx: conveyor.JobContext, payload: Any) -> Any:
        return None

    with pytest.raises(ValueError, match=r"'t\.missing'"):
        ConveyorTest(["t.missing"], registry=registry)
    with pytest.raises(ValueError, match="is not registered"):
        ConveyorTest([loose], registry=registry)


def test_a_handle_with_a_name_attribute_selects_its_type() -> None:
    class Handle:
        name = "t.double"

    cv = ConveyorTest([Handle()], registry=registry)
    assert cv.registry.names() == ["t.double"]
    assert cv.registry.get("t.sync") is None
    cv.executor.close()


def test_bad_worker_options_raise_config_error_naming_them() -> None:
    with pytest.raises(ConfigError, match="concurrency"):
        ConveyorTest(registry=registry, concurrency=0)
    with pytest.raises(ConfigError, match="queues"):
        ConveyorTest(registry=registry, queues=["no spaces allowed"])
    with pytest.raises(ConfigError, match="queues: a list of queue names"):
        ConveyorTest(registry=registry, queues="default")


async def test_a_handler_that_ignores_cancellation_cannot_hang_a_timed_out_drain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(harness, "ABANDON_AFTER_SECONDS", 0.2)
    local = Registry()
    ended = asyncio.Event()

    @local.handler("t.stubborn", timeout=0.05)
    async def stubborn(ctx: conveyor.JobContext, payload: Any) -> Any:
        while not ended.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue
        return None

    async with ConveyorTest(registry=local) as cv:
        job = await cv.client.enqueue("t.stubborn", None)
        with pytest.raises(DrainTimeout) as caught:
            await cv.drain(timeout=0.2)
        assert len(cv.abandoned) == 1
        ended.set()  # the handler ends on its own, and its outcome is written then
        await asyncio.wait(cv.abandoned, timeout=10)
        assert not cv.abandoned
    assert caught.value.running == [job.id]


@pytest.mark.parametrize("bad", [0, -1, "5", True])
async def test_a_bad_drain_timeout_is_refused_before_anything_runs(bad: Any) -> None:
    async with _harness(handlers=[double]) as cv:
        job = await cv.client.enqueue("t.double", {"n": 1})
        with pytest.raises(ValidationError, match=r"^timeout: must be a number of seconds > 0"):
            await cv.drain(timeout=bad)
        assert (await cv.client.get(job.id)).status is conveyor.Status.PENDING
