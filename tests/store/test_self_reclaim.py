"""Regression: a worker taking over (XAUTOCLAIM) an entry it still owns in Redis but lost
track of, e.g. because the outcome of its attempt could not be written while the network
to Redis was down.

claim.lua used to treat such a job ("running", worker = this consumer) as a claim sent
again after a lost reply and changed nothing: the job ran a second time under the same
fencing token and attempt number, with no lost attempt in its history, so the duplicate
was invisible and the poison bound never counted it. Found by the network-fault scenario
(tests/faults/test_network_faults.py, blackhole)."""

from __future__ import annotations

import json

import pytest
from redis.asyncio import Redis

from conveyor.job import Outcome
from conveyor.store.consumer import ConsumerStore
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants

pytestmark = pytest.mark.anyio
Q = seed.DEFAULT_QUEUE


async def test_reclaiming_an_own_forgotten_attempt_starts_a_new_fenced_attempt(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q, max_attempts=5)
    forgotten = await seed.claim_one(consumer, Q)  # its outcome never reaches Redis

    deliveries = await seed.reclaim(consumer, Q)
    assert [(d.entry_id, d.reclaimed) for d in deliveries] == [(forgotten.entry_id, True)]
    [again] = (await consumer.claim(deliveries)).run

    assert again.attempt == 2
    assert again.token == "c1:2" != forgotten.token
    h = await seed.job_hash(r, keys, Q, job.id)
    assert (h["attempts"], h["deliveries"], h["lost"], h["token"]) == (b"2", b"2", b"1", b"c1:2")
    [lost] = json.loads(h["history"])
    assert (lost["attempt"], lost["outcome"], lost["worker"]) == (1, Outcome.LOST, "c1")
    # The forgotten attempt's late write is fenced off; the new one completes.
    assert await seed.complete(consumer, forgotten, "late") == "stale"
    assert await seed.complete(consumer, again, "on time") == "completed"
    await assert_invariants(r, keys, [Q])


async def test_a_fresh_claim_sent_again_still_changes_nothing(
    r: Redis, keys: Keys, producer: ProducerStore, consumer: ConsumerStore
) -> None:
    job = await seed.enqueue(producer, Q)
    [d] = await seed.deliver(consumer, Q)
    assert not d.reclaimed
    first = await consumer.claim([d])
    h = await seed.job_hash(r, keys, Q, job.id)
    assert await consumer.claim([d]) == first
    assert await seed.job_hash(r, keys, Q, job.id) == h
    assert "lost" not in h
