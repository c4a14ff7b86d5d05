"""Putting jobs in through the real API: batches, and concurrent single POSTs that keep
going through faults and record every answer (201, refusal, or unknown outcome)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

BATCH = 500


def post_batch(
    api: str, jobs: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> list[str]:
    """Create `jobs` with POST /jobs/batch; returns their ids (all answered 201)."""
    ids: list[str] = []
    with httpx.Client(base_url=api, headers=headers or {}, timeout=30) as http:
        for start in range(0, len(jobs), BATCH):
            response = http.post("/jobs/batch", json={"jobs": jobs[start : start + BATCH]})
            assert response.status_code == 201, response.text
            ids += [job["id"] for job in response.json()["jobs"]]
    return ids


@dataclass
class Poster:
    """`clients` threads POSTing one job each request until stopped.

    accepted: ids answered 201; refused: status codes of 4xx/5xx answers; unknown: requests
    whose outcome the client cannot know (connection error or timeout); latencies of every
    answered request, with the time it was sent."""

    api: str
    make_job: Callable[[int], dict[str, Any]]
    clients: int = 4
    timeout: float = 10.0
    accepted: list[str] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    unknown: int = 0
    latencies: list[tuple[float, float, int]] = field(default_factory=list)  # sent, s, status
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _n: int = 0

    def start(self) -> None:
        for _ in range(self.clients):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _next(self) -> int:
        with self._lock:
            self._n += 1
            return self._n

    def _run(self) -> None:
        with httpx.Client(base_url=self.api, timeout=self.timeout) as http:
            while not self._stop.is_set():
                sent = time.time()
                began = time.monotonic()
                try:
                    response = http.post("/jobs", json=self.make_job(self._next()))
                except httpx.HTTPError:
                    with self._lock:
                        self.unknown += 1
                    time.sleep(0.05)
                    continue
                took = time.monotonic() - began
                with self._lock:
                    self.latencies.append((sent, took, response.status_code))
                    if response.status_code == 201:
                        self.accepted.append(response.json()["id"])
                    else:
                        self.refused.append(response.status_code)
                if response.status_code >= 500:
                    time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(round(p / 100 * len(ordered) + 0.5) - 1, 0)
    return ordered[min(rank, len(ordered) - 1)]
