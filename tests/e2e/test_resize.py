"""Resizing a running worker through the API, observed through its running count: it grows
within a couple of seconds, and when shrunk lets running jobs finish and starts no more
than the new size."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from conveyor.client import Client
from tests.e2e.system import System
from tests.helpers.wait import eventually

JOB_MS = 600


def enqueue(system: System, count: int) -> None:
    async def run() -> None:
        async with Client.from_url(system.redis_url, key_prefix=system.prefix) as client:
            await client.enqueue_many([("test.record", {"ms": JOB_MS}) for _ in range(count)])

    asyncio.run(run())


def the_worker(system: System) -> dict[str, Any] | None:
    """The one live worker, None before it first beat."""
    response = httpx.get(f"{system.api}/workers", headers=system.headers, timeout=5)
    items = response.json()["items"]
    assert len(items) <= 1
    return dict(items[0]) if items else None


def wait_running(system: System, size: int, timeout: float = 10) -> float:
    """When the worker showed `size` as its concurrency and ran exactly that many jobs."""

    def check() -> float | None:
        w = the_worker(system)
        if w is None or w["concurrency"] != size or w["in_flight"] != size:
            return None
        return time.time()

    return eventually(check, timeout=timeout, interval=0.05, what=f"{size} jobs running")


def put(system: System, path: str, concurrency: int | None) -> httpx.Response:
    return httpx.put(
        f"{system.api}{path}", json={"concurrency": concurrency}, headers=system.headers, timeout=5
    )


def most_running_after(system: System, since: float) -> int:
    """The most jobs the ledger shows running at once at any start after `since`."""
    events = sorted(
        (float(line["t"]), 1 if line["event"] == "start" else -1, line["event"])
        for line in system.ledger_lines()
    )
    running, most = 0, 0
    for t, step, event in events:
        running += step
        if event == "start" and t > since:
            most = max(most, running)
    return most


@pytest.mark.timeout(120)
def test_a_running_worker_is_resized_up_and_down(system: System) -> None:
    enqueue(system, 200)
    system.start_api()
    system.start("worker", "--concurrency", "2")
    wait_running(system, 2, timeout=20)
    worker = the_worker(system)
    assert worker is not None
    worker_id = worker["id"]

    asked = time.time()
    assert put(system, f"/workers/{worker_id}/concurrency", 6).status_code == 200
    assert wait_running(system, 6) - asked < 1 + JOB_MS / 1000 + 1.5

    assert put(system, f"/workers/{worker_id}/concurrency", 1).status_code == 200
    shrunk = wait_running(system, 1)
    assert most_running_after(system, shrunk) <= 1

    # Cleared: the queue's size applies, then the worker's own again.
    assert put(system, "/queues/default/concurrency", 3).status_code == 200
    assert put(system, f"/workers/{worker_id}/concurrency", None).status_code == 200
    wait_running(system, 3)
    assert put(system, "/queues/default/concurrency", None).status_code == 200
    wait_running(system, 2)


def test_resizing_a_worker_that_is_not_live_is_404(system: System) -> None:
    system.start_api()
    response = put(system, "/workers/gone-1-abcdef/concurrency", 4)
    assert response.status_code == 404
    assert response.json()["type"].endswith("worker-not-found")
