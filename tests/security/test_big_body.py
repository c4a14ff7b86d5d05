"""Finding 4: a 16 MiB `POST /jobs/batch` body of 5.6 M empty objects used to be parsed on
the event loop for seconds (`/healthz` took 6.6 s meanwhile) and to hold +345 MB.

Now a batch body holding more JSON values than `max_batch_jobs` jobs could need (counted
before parsing, as its `{`, `[` and `,` outside strings) is refused with a 422 naming `jobs`,
and a large body within that budget is parsed off the event loop, one at a time. Each test
sends its body while a thread polls `/healthz` every 50 ms, and asserts:

- the answer is a 413 or 422 problem+json, and nothing was written (two batches within the
  budget, one of many values and one of big strings, are created instead);
- no `/healthz` answer took a second or more;
- the API process's peak resident memory (VmHWM) grew by less than 4x the batch body
  limit + 64 MiB over what it held before the request.

Measured on the development machine: before, the empty objects took 0.9 s, +418 MiB peak
and a 0.8 s /healthz; 16 MiB of `0,` took 2.0 s and a 1.9 s /healthz. Now each is refused
in 0.15-0.4 s with +32 MiB peak and /healthz under 50 ms; the batches within the budget peak
at +74 MiB (a million values) and +98 MiB (16 MiB of strings), /healthz under 0.2 s.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import redis

from conveyor.api.body import batch_body_limit
from tests.e2e.system import System

PAYLOAD_LIMIT = 1024 * 1024  # the default max_payload_bytes
BODY_LIMIT = batch_body_limit(PAYLOAD_LIMIT)  # 16 MiB + 64 KiB
RSS_BOUND_KIB = (4 * BODY_LIMIT + 64 * 1024 * 1024) // 1024
HEALTHZ_BOUND_S = 1.0
ANSWER_DEADLINE_S = 20.0


def _empty_objects() -> bytes:
    """16 MiB of `{"jobs":[{},{},...]}`: 5.6 M empty objects."""
    n = (16 * 1024 * 1024 - 12) // 3
    return b'{"jobs":[' + b"{}," * (n - 1) + b"{}]}"


def _tiny_values() -> bytes:
    """Just under the body limit of `{"jobs":[0,0,...]}`: 8.4 M one-digit integers."""
    n = (BODY_LIMIT - 12) // 2
    return b'{"jobs":[' + b"0," * (n - 1) + b"0]}"


def _many_values_within_budget() -> bytes:
    """1,000 jobs whose payloads are lists of 990 integers: 2 MiB, about 993,000 values,
    just within the budget, parsed in a worker thread."""
    payload = "[" + ",".join(["12345"] * 990) + "]"
    job = '{"type":"echo","payload":' + payload + "}"
    return ('{"jobs":[' + ",".join([job] * 1000) + "]}").encode()


def _big_strings() -> bytes:
    """1,000 jobs whose payloads are 16 KiB strings: just under the body limit."""
    job = '{"type":"echo","payload":"' + "x" * (16 * 1024) + '"}'
    return ('{"jobs":[' + ",".join([job] * 1000) + "]}").encode()


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


class _HealthPoller(threading.Thread):
    """GETs /healthz every 50 ms until stopped; keeps every latency (a failure counts as
    the time it took to fail, with a 5 s timeout)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.stopped.is_set():
                start = time.perf_counter()
                try:
                    status = client.get(self.url).status_code
                    if status != 200:
                        self.failures.append(f"status {status}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.latencies.append(time.perf_counter() - start)
                self.stopped.wait(0.05)


def _send_and_measure(system: System, body: bytes, name: str, created: int = 0) -> None:
    api = system.start_api()
    pid = api.popen.pid
    store = redis.Redis.from_url(system.redis_url)
    keys_before = sum(1 for _ in store.scan_iter(f"{system.prefix}:*", count=10_000))
    rss_before = _kib(pid, "VmRSS")
    poller = _HealthPoller(f"{system.api}/healthz")
    poller.start()
    # The poller must be answering before the body goes out.
    deadline = time.monotonic() + 5
    while not poller.latencies and time.monotonic() < deadline:
        poller.stopped.wait(0.01)
    start = time.perf_counter()
    try:
        response = httpx.post(
            f"{system.api}/jobs/batch",
            content=body,
            headers={**system.headers, "Content-Type": "application/json"},
            timeout=ANSWER_DEADLINE_S,
        )
        took = time.perf_counter() - start
        # Two more polls after the answer, so a stall that ends with it is measured.
        polls = len(poller.latencies) + 2
        deadline = time.monotonic() + 10
        while len(poller.latencies) < polls and time.monotonic() < deadline:
            poller.stopped.wait(0.01)
    finally:
        poller.stopped.set()
        poller.join(10)
    peak_growth = _kib(pid, "VmHWM") - rss_before
    rss_after = _kib(pid, "VmRSS") - rss_before
    keys_after = sum(1 for _ in store.scan_iter(f"{system.prefix}:*", count=10_000))
    figures = {
        "body": name,
        "body_bytes": len(body),
        "status": response.status_code,
        "answer_s": round(took, 2),
        "peak_rss_growth_mib": round(peak_growth / 1024, 1),
        "rss_growth_after_mib": round(rss_after / 1024, 1),
        "rss_bound_mib": RSS_BOUND_KIB // 1024,
        "healthz_max_ms": round(max(poller.latencies) * 1000, 1),
        "healthz_polls": len(poller.latencies),
        "detail": response.text[:200],
    }
    print(figures)
    if created:
        assert response.status_code == 201, figures
        assert len(response.json()["jobs"]) == created
    else:
        assert response.status_code in (413, 422), figures
        assert response.headers["content-type"].startswith("application/problem+json"), figures
        if response.status_code == 422:
            assert [e["field"] for e in response.json()["errors"]] == ["jobs"], figures
        assert keys_after == keys_before, "a refused batch writes nothing"
    assert not poller.failures, poller.failures[:5]
    assert max(poller.latencies) < HEALTHZ_BOUND_S, figures
    assert peak_growth < RSS_BOUND_KIB, figures


def test_a_body_of_empty_objects_is_refused_without_stalling(closed: System) -> None:
    _send_and_measure(closed, _empty_objects(), "16 MiB of {}")


def test_a_body_of_tiny_values_just_under_the_limit_is_refused(closed: System) -> None:
    _send_and_measure(closed, _tiny_values(), "body limit of 0")


def test_a_batch_of_many_values_within_the_budget_is_created(closed: System) -> None:
    _send_and_measure(closed, _many_values_within_budget(), "~993,000 values", created=1000)


def test_a_batch_of_big_string_payloads_is_created(closed: System) -> None:
    _send_and_measure(closed, _big_strings(), "1,000 x 16 KiB strings", created=1000)
