"""A job that sets no max_attempts shows the limit a worker applies to it once the worker
has started it: its handler's max_attempts, else the worker's default."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from conveyor.states import Status
from conveyor.store.consumer import AttemptLimits
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.worker.registry import Registry
from conveyor.worker.retry import attempt_limits
from conveyor.worker.runtime import Worker
from tests.worker.support import enqueue, running, scheduling, wait_status, worker_settings


def always_fails(ctx: Any, payload: Any) -> None:
    raise ValueError("no")


def test_attempt_limits_lists_the_handlers_that_set_one() -> None:
    registry = Registry()
    registry.register("limited", always_fails, max_attempts=2)
    registry.register("plain", always_fails)
    assert attempt_limits(registry, 3) == AttemptLimits(3, {"limited": 2})


@pytest.mark.anyio
async def test_a_failed_job_shows_the_limit_it_was_judged_by(
    r: Redis, redis_url: str, prefix: str, keys: Keys, producer: ProducerStore
) -> None:
    registry = Registry()
    registry.register("limited", always_fails, max_attempts=2)
    registry.register("plain", always_fails)
    worker = Worker(worker_settings(redis_url, prefix, max_attempts=3), registry, redis=r)
    limited = await enqueue(producer, "limited")
    plain = await enqueue(producer, "plain")
    own = await enqueue(producer, "limited", max_attempts=1)
    assert (await producer.get(limited)).to_json()["max_attempts"] is None  # not claimed yet

    async with scheduling(r, keys), running(worker):  # the scheduler brings retries back
        jobs = [await wait_status(producer, i, Status.FAILED) for i in (limited, plain, own)]

    assert [(j.attempts, j.to_json()["max_attempts"]) for j in jobs] == [(2, 2), (3, 3), (1, 1)]
