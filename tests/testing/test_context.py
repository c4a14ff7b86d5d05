"""make_context: a JobContext for calling one handler directly."""

from __future__ import annotations

import re
from typing import Any

import pytest

import conveyor
from conveyor.errors import ValidationError
from conveyor.ids import JOB_ID_PATTERN
from conveyor.testing import make_context

pytestmark = pytest.mark.anyio


def test_defaults_are_a_first_attempt() -> None:
    ctx = make_context("reports.monthly")
    assert isinstance(ctx, conveyor.JobContext)
    assert re.fullmatch(JOB_ID_PATTERN, ctx.job_id)
    assert (ctx.type, ctx.queue, ctx.attempt, ctx.max_attempts) == (
        "reports.monthly",
        "default",
        1,
        3,
    )
    assert ctx.correlation_id is None
    assert not ctx.cancelled.is_set()
    ctx.raise_if_cancelled()  # not cancelled: returns


def test_every_field_can_be_given() -> None:
    job_id = make_context().job_id
    ctx = make_context(
        "a.b",
        job_id=job_id,
        queue="slow",
        attempt=3,
        max_attempts=5,
        correlation_id="req-1",
        worker_id="w-9",
    )
    assert (ctx.job_id, ctx.queue, ctx.attempt, ctx.max_attempts) == (job_id, "slow", 3, 5)
    assert (ctx.correlation_id, ctx.worker_id) == ("req-1", "w-9")


def test_a_cancelled_context_stops_a_sync_handler() -> None:
    def handler(ctx: conveyor.JobContext, payload: Any) -> None:
        ctx.raise_if_cancelled()

    with pytest.raises(conveyor.JobCancelled):
        handler(make_context(cancelled=True), None)


async def test_an_async_handler_is_called_with_it() -> None:
    async def handler(ctx: conveyor.JobContext, payload: Any) -> Any:
        return {"attempt": ctx.attempt, "payload": payload}

    assert await handler(make_context(attempt=2), [1]) == {"attempt": 2, "payload": [1]}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"job_type": "has space"}, "job_type"),
        ({"queue": ""}, "queue"),
        ({"job_id": "not-a-ulid"}, "job_id"),
        ({"attempt": 0}, "attempt"),
        ({"attempt": True}, "attempt"),
        ({"max_attempts": 1.5}, "max_attempts"),
        ({"correlation_id": 7}, "correlation_id"),
        ({"worker_id": ""}, "worker_id"),
    ],
)
def test_a_bad_value_names_its_argument(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make_context(**options)
    assert caught.value.field == field
