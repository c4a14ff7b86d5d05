"""Regression: the HTTP client resent a create answered 503 without an idempotency key.

The API answers 503 when its Redis deadline passes, but a stopped Redis runs the commands
it had received once it resumes: the fault suite's Redis-pause scenario
(tests/faults/test_redis_pause.py) saw jobs created whose POST got a 503. Resending such a
create could make the job twice, so only repeatable calls (reads, cancels, creates with an
idempotency key) are retried after a 503."""

from __future__ import annotations

import httpx
import pytest

from conveyor.backoff import RetryPolicy
from conveyor.errors import StoreUnavailable
from conveyor.http_client import RetryConfig, SyncHttpClient

RETRY = RetryConfig(
    attempts=3,
    backoff=RetryPolicy(base_seconds=0.01, factor=2.0, max_seconds=0.05),
    deadline_seconds=10.0,
)
UNAVAILABLE = {
    "type": "urn:conveyor:problem:store-unavailable",
    "title": "Service Unavailable",
    "status": 503,
    "detail": "the job store did not answer in time",
}


def _client() -> tuple[SyncHttpClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def unavailable(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503, json=UNAVAILABLE, headers={"Retry-After": "1"})

    client = SyncHttpClient("http://api", retry=RETRY, transport=httpx.MockTransport(unavailable))
    return client, seen


def test_a_create_answered_503_is_not_sent_again() -> None:
    client, seen = _client()
    with client:
        with pytest.raises(StoreUnavailable):
            client.enqueue("echo", {"n": 1})
        assert len(seen) == 1
        with pytest.raises(StoreUnavailable):
            client.enqueue_many([("echo", 1), ("echo", 2)])
        assert len(seen) == 2


def test_a_create_with_an_idempotency_key_and_a_read_are_retried() -> None:
    client, seen = _client()
    with client:
        with pytest.raises(StoreUnavailable):
            client.enqueue("echo", {"n": 1}, idempotency_key="order-1")
        assert len(seen) == 3
        assert {r.headers["Idempotency-Key"] for r in seen} == {"order-1"}
        with pytest.raises(StoreUnavailable):
            client.list()
        assert len(seen) == 6
