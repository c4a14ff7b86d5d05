"""T12 (injection): every store operation run with each key it touches replaced by a key of
the wrong type. Pass: an operation either did not need that key, or failed with nothing
written (the digest of every key of the prefix is unchanged): never a partial write."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from redis.asyncio import Redis

from conveyor.store.keys import Keys
from tests.faults.conftest import MakeRedis
from tests.faults.harness.recorder import Figures, Recorder
from tests.helpers import tampering

pytestmark = pytest.mark.faults

KEYS_TOUCHED = 13  # the queue's 12 keys and the job hash


async def _run(port: int) -> dict[tuple[str, int], str]:
    r = Redis(port=port, socket_timeout=10)
    outcomes: dict[tuple[str, int], str] = {}
    try:
        for n, operation in enumerate(tampering.OPERATIONS):
            for target in range(KEYS_TOUCHED):
                keys = Keys(f"tamper{n}x{target}")
                outcomes[operation, target] = await tampering.tampered(r, keys, operation, target)
    finally:
        await r.aclose()
    return outcomes


def test_no_operation_writes_partially_on_a_wrong_typed_key(
    make_redis: MakeRedis, recorder: Recorder
) -> None:
    server = make_redis()
    outcomes = asyncio.run(_run(server.port))
    partial = sorted(
        f"{op} with key {target}" for (op, target), o in outcomes.items() if o == "partial"
    )
    counts = Counter(outcomes.values())
    recorder.record(
        Figures(
            scenario="T12 wrong-typed keys",
            jobs=len(outcomes),
            faults=f"{len(tampering.OPERATIONS)} operations x {KEYS_TOUCHED} keys, each key "
            "replaced by a string",
            lost=0,
            duplicated=0,
            explained=0,
            details={"outcomes": dict(counts), "partial_writes": partial},
        )
    )
    assert partial == []
    assert counts["refused"] > 0
