"""Fixtures of the Cluster tests: one local 3-master Redis Cluster per test process.

Starting three nodes and joining them takes a second or two, so the cluster is shared by
the tests of one xdist worker; each test keeps to its own key prefix (the root conftest's
`prefix`), so they never see each other's keys.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from conveyor.redis_conn import connect_url
from tests.cluster.servers import LocalCluster
from tests.store.conftest import consumer, consumer2, producer, scheduler

__all__ = ["consumer", "consumer2", "producer", "scheduler"]  # the store tests' fixtures


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        local.start()
        yield local
    finally:
        local.stop()


def cluster_client(cluster: LocalCluster) -> Redis:
    """A Cluster client typed as `Redis`, built as every Conveyor process builds it."""
    return connect_url(cluster.url, timeout_seconds=5)


@pytest.fixture
async def r(cluster: LocalCluster) -> AsyncIterator[Redis]:
    """The store tests' client, here talking to the Cluster."""
    client = cluster_client(cluster)
    yield client
    await client.aclose()


@pytest.fixture
async def other_client(cluster: LocalCluster) -> AsyncIterator[Redis]:
    """A second connection pool, for racing a second process."""
    client = cluster_client(cluster)
    yield client
    await client.aclose()
