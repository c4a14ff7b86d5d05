"""Fixtures of the store tests: the real stores over the test's private key prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from conveyor.store.consumer import ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.store.scheduling import SchedulerStore
from tests.helpers import seed
from tests.helpers.redis_server import RedisServer

Q = seed.DEFAULT_QUEUE


@pytest.fixture
def producer(r: Redis, keys: Keys) -> ProducerStore:
    return seed.producer_store(r, keys)


@pytest.fixture
def consumer(r: Redis, keys: Keys) -> ConsumerStore:
    return seed.consumer_store(r, keys, "c1")


@pytest.fixture
def consumer2(r: Redis, keys: Keys) -> ConsumerStore:
    return seed.consumer_store(r, keys, "c2")


@pytest.fixture
def scheduler(r: Redis, keys: Keys) -> SchedulerStore:
    return seed.scheduler_store(r, keys)


@pytest.fixture
async def other_client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A second connection pool, for racing a second process."""
    client = Redis(port=redis_server.port, socket_timeout=5, socket_connect_timeout=5)
    yield client
    await client.aclose()
