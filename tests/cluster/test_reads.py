"""A worker's reads in Redis Cluster: one XREADGROUP per queue, since queues are in
different slots, answering as the single multi-stream read does on one server."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from conveyor.store.consumer import ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from tests.cluster.servers import LocalCluster
from tests.helpers import seed
from tests.helpers.wait import eventually_async

pytestmark = [pytest.mark.cluster, pytest.mark.anyio]


@pytest.fixture
def queues(cluster: LocalCluster, prefix: str) -> list[str]:
    """One queue on each master."""
    return [names[0] for names in cluster.queues_on_each_master(prefix).values()]


async def blocked_on_every_master(cluster: LocalCluster) -> None:
    """Until each master has a client blocked in a read: the reads of the test's consumer
    (the tests of one process run one at a time on their cluster)."""

    async def blocked() -> bool:
        counts = []
        for port in cluster.ports:
            client = Redis(port=port, socket_timeout=2)
            try:
                counts.append(int((await client.info("clients"))["blocked_clients"]))
            finally:
                await client.aclose()
        return all(counts)

    await eventually_async(blocked, timeout=5, what="a blocking read on each master")


async def test_every_waiting_queue_is_read_in_one_call(
    producer: ProducerStore, consumer: ConsumerStore, queues: list[str]
) -> None:
    await consumer.ensure_groups(queues)
    jobs = [await seed.enqueue(producer, q) for q in queues]
    got = await consumer.read(queues, count=10, block_ms=1000)
    assert sorted(d.job_id for d in got) == sorted(j.id for j in jobs)
    assert [d.queue for d in got] == queues  # in the queues' priority order


async def test_a_read_of_idle_queues_returns_when_any_gets_a_job(
    cluster: LocalCluster, producer: ProducerStore, consumer: ConsumerStore, queues: list[str]
) -> None:
    await consumer.ensure_groups(queues)
    reading = asyncio.create_task(consumer.read(queues, count=10, block_ms=3000))
    await blocked_on_every_master(cluster)
    started = time.monotonic()
    job = await seed.enqueue(producer, queues[1])
    [delivery] = await reading
    assert time.monotonic() - started < 1.5
    assert (delivery.queue, delivery.job_id) == (queues[1], job.id)
    assert await consumer.drain_reads() == []  # the other two end empty


async def test_entries_delivered_to_reads_in_flight_are_handed_over_at_the_end(
    cluster: LocalCluster,
    r: Redis,
    keys: Keys,
    producer: ProducerStore,
    consumer: ConsumerStore,
    queues: list[str],
) -> None:
    await consumer.ensure_groups(queues)
    reading = asyncio.create_task(consumer.read(queues, count=10, block_ms=3000))
    await blocked_on_every_master(cluster)
    first = await seed.enqueue(producer, queues[0])
    assert [d.job_id for d in await reading] == [first.id]
    late = await seed.enqueue(producer, queues[2])  # delivered to a read still in flight
    [collected] = await consumer.drain_reads()
    assert collected.job_id == late.id
    pending = await r.xpending(keys.queue(queues[2]).stream, "workers")
    assert pending["pending"] == 1  # delivered to this consumer: now it is in its hands
