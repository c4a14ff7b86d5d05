"""Weighted queues with a real worker process: while every queue has jobs waiting, the
worker starts jobs of each queue in proportion to its weight; without weights it keeps
strict priority order."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from conveyor.client import Client
from tests.e2e.system import System
from tests.helpers.wait import eventually

QUEUES = ("high", "default", "low")
PER_QUEUE = 300
MEASURED = 240  # starts counted: fewer than any queue's share of them could exhaust it


def enqueue_all(system: System) -> dict[str, str]:
    """PER_QUEUE short jobs on each queue; job id -> queue."""

    async def run() -> dict[str, str]:
        async with Client.from_url(system.redis_url, key_prefix=system.prefix) as client:
            where: dict[str, str] = {}
            for queue in QUEUES:
                jobs = await client.enqueue_many(
                    [("test.record", {"ms": 2}, {"queue": queue}) for _ in range(PER_QUEUE)]
                )
                where.update({job.id: queue for job in jobs})
            return where

    return asyncio.run(run())


def shares_of_first_starts(system: System, where: dict[str, str]) -> Counter[str]:
    def enough() -> list[dict[str, object]] | None:
        starts = [line for line in system.ledger_lines() if line["event"] == "start"]
        return starts if len(starts) >= MEASURED else None

    starts = eventually(enough, timeout=60, what=f"{MEASURED} jobs started")
    first = sorted(starts, key=lambda line: float(str(line["t"])))[:MEASURED]
    return Counter(where[str(line["job_id"])] for line in first)


@pytest.mark.timeout(120)
def test_starts_follow_the_weights_while_every_queue_is_busy(system: System) -> None:
    where = enqueue_all(system)
    system.start("worker", "--queues", "high:5,default:2,low:1", "--concurrency", "2")
    shares = shares_of_first_starts(system, where)
    expected = {"high": MEASURED * 5 / 8, "default": MEASURED * 2 / 8, "low": MEASURED / 8}
    for queue, want in expected.items():
        assert abs(shares[queue] - want) <= 0.2 * want + 3, (shares, expected)


@pytest.mark.timeout(120)
def test_without_weights_the_first_queue_goes_first(system: System) -> None:
    where = enqueue_all(system)
    system.start("worker", "--queues", "high,default,low", "--concurrency", "2")
    assert shares_of_first_starts(system, where) == {"high": MEASURED}
