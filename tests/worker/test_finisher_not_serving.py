"""The finisher retries a batch while Redis is not serving (a Cluster failing over answers
CLUSTERDOWN, TRYAGAIN...), and gives a script error up at once (the attempts are then
reclaimed)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest
from redis import exceptions as e

from conveyor.store.consumer import ConsumerStore
from conveyor.worker.executor import Requeue
from conveyor.worker.finisher import Finisher

pytestmark = pytest.mark.anyio


class FlakyStore:
    """`finish` raises each of `errors` in turn, then records the requeues."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def finish(self, completions: Any, failures: Any, requeues: Any, **_: Any) -> Any:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {job.job_id: "pending" for job in requeues}


def requeue(job_id: str) -> Requeue:
    return Requeue(cast(Any, SimpleNamespace(job_id=job_id)))


@pytest.mark.parametrize(
    "errors",
    [
        [e.ClusterDownError("The cluster is down"), e.TryAgainError("rehashing")],
        [e.MasterDownError("Link with MASTER is down"), e.SlotNotCoveredError("Slot 7")],
        [e.ClusterError("TTL exhausted."), e.ConnectionError("refused")],
    ],
)
async def test_not_serving_is_retried_until_it_serves(errors: list[Exception]) -> None:
    store = FlakyStore(*errors)
    finisher = Finisher(cast(ConsumerStore, store), "ch", give_up_after=30)
    future = _future()
    await finisher._write([(requeue("j1"), future)])
    assert store.calls == len(errors) + 1
    assert future.result() == "pending"


async def test_a_script_error_is_not_retried() -> None:
    store = FlakyStore(e.ResponseError("ERR Error running script: oops"))
    finisher = Finisher(cast(ConsumerStore, store), "ch", give_up_after=30)
    future = _future()
    await finisher._write([(requeue("j1"), future)])
    assert store.calls == 1
    assert future.result() == "unrecorded"


def _future() -> asyncio.Future[str]:
    return asyncio.get_running_loop().create_future()
