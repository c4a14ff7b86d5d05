"""1,000 jobs through two worker processes: all complete, none runs twice."""

from __future__ import annotations

import asyncio
from collections import Counter

import msgpack
import pytest
from redis.asyncio import Redis

from conveyor.ids import new_job_id
from conveyor.states import Status
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.values import NewJob
from tests.e2e.system import System
from tests.helpers.invariants import check_invariants
from tests.helpers.wait import eventually

pytestmark = pytest.mark.e2e


def test_thousand_jobs_through_two_workers_run_once_each(system: System) -> None:
    keys = Keys(system.prefix)

    async def enqueue() -> list[str]:
        async with Redis.from_url(system.redis_url) as r:
            store = ProducerStore(r, keys, result_ttl_seconds=3600)
            jobs = [
                NewJob(new_job_id(), "test.record", "default", msgpack.packb({"ms": 1}))
                for _ in range(1000)
            ]
            await store.enqueue(jobs)
            return [j.id for j in jobs]

    ids = asyncio.run(enqueue())
    system.start("worker")
    system.start("worker")

    async def completed() -> int:
        async with Redis.from_url(system.redis_url) as r:
            return int(await r.zcard(keys.queue("default").index(Status.COMPLETED)))

    eventually(lambda: asyncio.run(completed()) == 1000, timeout=60, what="1000 completed")
    runs = Counter(line["job_id"] for line in system.ledger_lines() if line["event"] == "end")
    assert set(runs) == set(ids)
    assert max(runs.values()) == 1
    workers = {line["pid"] for line in system.ledger_lines()}
    assert len(workers) == 2

    async def invariants() -> list[str]:
        async with Redis.from_url(system.redis_url) as r:
            return await check_invariants(r, keys, ["default"])

    assert asyncio.run(invariants()) == []
