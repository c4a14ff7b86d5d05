"""Enqueue phases: HTTP one by one with concurrent clients, HTTP batches, `enqueue_many`."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from conveyor.client import Client
from conveyor.http_client import HttpClient
from conveyor_tools.bench import http_load

JOB_TYPE = "echo"


@dataclass(frozen=True)
class Rate:
    jobs: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else 0.0


def _payload(i: int) -> dict[str, int]:
    return {"i": i}


def http_single(api_url: str, queue: str, n: int, concurrency: int) -> tuple[Rate, list[str]]:
    """`POST /jobs` one job per request over `concurrency` keep-alive connections, with
    the lean generator of `http_load` so the client's own CPU does not set the rate."""
    bodies = [
        json.dumps({"type": JOB_TYPE, "payload": _payload(i), "queue": queue}).encode()
        for i in range(n)
    ]
    start = time.perf_counter()
    ids = asyncio.run(http_load.post_jobs(api_url, bodies, concurrency))
    return Rate(len(ids), time.perf_counter() - start), ids


async def _http_batch(api_url: str, queue: str, n: int, batch: int) -> list[str]:
    ids: list[str] = []
    async with HttpClient(api_url, timeout_seconds=60) as http:
        for start in range(0, n, batch):
            items = [
                (JOB_TYPE, _payload(i), {"queue": queue})
                for i in range(start, min(n, start + batch))
            ]
            ids.extend(job.id for job in await http.enqueue_many(items))
    return ids


def http_batch(api_url: str, queue: str, n: int, batch: int) -> tuple[Rate, list[str]]:
    start = time.perf_counter()
    ids = asyncio.run(_http_batch(api_url, queue, n, batch))
    return Rate(len(ids), time.perf_counter() - start), ids


async def fill_async(client: Client, queue: str, n: int, batch: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, n, batch):
        items = [
            (JOB_TYPE, _payload(i), {"queue": queue}) for i in range(start, min(n, start + batch))
        ]
        ids.extend(job.id for job in await client.enqueue_many(items))
    return ids


def fill(url: str, prefix: str, queue: str, n: int, batch: int) -> tuple[Rate, list[str]]:
    """Enqueue `n` echo jobs with the Python client's pipelined `enqueue_many`."""

    async def run() -> list[str]:
        async with Client.from_url(url, key_prefix=prefix, timeout_seconds=30) as client:
            return await fill_async(client, queue, n, batch)

    start = time.perf_counter()
    ids = asyncio.run(run())
    return Rate(len(ids), time.perf_counter() - start), ids
