"""Regression: every transition script checks the types of its keys before its first write.

Only enqueue, replay and purge did; the others (cancel, claim, complete, fail, requeue,
renew, promote, expire) wrote first and failed on the wrong-typed key later, and Redis
keeps a failed script's earlier writes: e.g. cancel of a pending job acknowledged its entry
and set it `canceled`, then failed on the index, leaving it in idx:pending. Found by the
key-tampering scenario (tests/faults/test_key_tampering.py, T12 in docs/reliability.md)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from conveyor.store.keys import Keys
from tests.helpers import tampering

pytestmark = pytest.mark.anyio

KEYS_TOUCHED = 13  # the queue's 12 keys and the job hash


@pytest.mark.parametrize("operation", list(tampering.OPERATIONS))
async def test_no_operation_writes_part_of_its_change_when_a_key_has_the_wrong_type(
    r: Redis, operation: str
) -> None:
    outcomes = {}
    for target in range(KEYS_TOUCHED):
        keys = Keys(f"kt{target}{operation.replace(' ', '').replace(',', '')[:12]}")
        await _clear(r, keys)
        outcomes[target] = await tampering.tampered(r, keys, operation, target)
        await _clear(r, keys)
    partial = {t: o for t, o in outcomes.items() if o == "partial"}
    assert partial == {}, f"{operation}: partial writes with key {sorted(partial)} tampered"
    assert "refused" in outcomes.values()  # it does check its keys


async def _clear(r: Redis, keys: Keys) -> None:
    names = [name async for name in r.scan_iter(match=f"{keys.prefix}:*", count=1000)]
    if names:
        await r.delete(*names)
