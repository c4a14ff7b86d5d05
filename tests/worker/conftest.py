"""Fixtures of the worker tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.worker import runtime as worker_runtime

CRASH_MESSAGE = "job attempt crashed the worker's runner"


@pytest.fixture
def producer(r: Redis, keys: Keys) -> ProducerStore:
    return ProducerStore(r, keys, result_ttl_seconds=600)


@pytest.fixture(autouse=True)
def no_crashed_runners(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """An exception that escapes a job's runner is a worker bug, whatever the test checks."""
    with caplog.at_level(logging.WARNING, logger="conveyor"):
        yield
    crashes = [rec for rec in caplog.records if rec.getMessage() == CRASH_MESSAGE]
    assert crashes == []


@pytest.fixture(autouse=True)
def short_blocking_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stopping worker notices the stop when its blocking read returns: keep reads short
    so every test's shutdown is quick."""
    monkeypatch.setattr(worker_runtime, "BLOCK_MS", 200)
