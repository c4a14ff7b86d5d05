from typing import Any

import pytest

import conveyor
from conveyor.testing import ConveyorTest, make_context

pytestmark = pytest.mark.anyio


@conveyor.handler("invoices.total", max_attempts=3)
async def total(ctx: conveyor.JobContext, payload: dict[str, Any]) -> dict[str, int]:
    if not payload.get("lines"):
        raise conveyor.PermanentError("an invoice needs lines")
    return {"total": sum(line["amount"] for line in payload["lines"])}


async def test_the_handler_alone():
    ctx = make_context("invoices.total")
    assert await total(ctx, {"lines": [{"amount": 5}]}) == {"total": 5}
    with pytest.raises(conveyor.PermanentError):
        await total(ctx, {"lines": []})


async def test_jobs_end_to_end():
    async with ConveyorTest(handlers=[total]) as cv:
        good = await cv.client.enqueue("invoices.total", {"lines": [{"amount": 2}, {"amount": 3}]})
        empty = await cv.client.enqueue("invoices.total", {"lines": []})
        dropped = await cv.client.enqueue("invoices.total", {"lines": [{"amount": 1}]})
        await cv.client.cancel(dropped.id)

        await cv.drain()  # runs the jobs until none is waiting

        done = await cv.client.get(good.id)
        assert done.status is conveyor.Status.COMPLETED
        assert done.result == {"total": 5}
        refused = await cv.client.get(empty.id)
        assert refused.status is conveyor.Status.FAILED
        assert refused.attempts == 1  # a PermanentError is not retried
        assert refused.last_error == "PermanentError: an invoice needs lines"
        canceled = await cv.client.get(dropped.id)
        assert canceled.status is conveyor.Status.CANCELED
        assert canceled.attempts == 0  # canceled before a worker took it
