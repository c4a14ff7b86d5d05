"""StatsCache: one read shared by concurrent callers, reused for `ttl`, a failure not
kept, 0 turning it off, a caller giving up without cancelling the others' read."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.store.inspect import QueueSnapshot
from conveyor.store.stats_cache import StatsCache

pytestmark = pytest.mark.anyio


class FakeRead:
    """A read that counts its calls and, while `gate` is clear, waits for it."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: Exception | None = None
        self.called = asyncio.Event()

    async def __call__(self) -> QueueSnapshot:
        self.calls += 1
        self.called.set()
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return QueueSnapshot((), self.calls)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def cache(read: FakeRead, ttl: float, clock: Clock | None = None) -> StatsCache:
    return StatsCache(read, ttl=ttl, timeout=5, clock=clock or Clock())


async def until_called(read: FakeRead) -> None:
    async with asyncio.timeout(5):
        await read.called.wait()


async def test_concurrent_callers_share_one_read() -> None:
    read = FakeRead()
    read.gate.clear()
    stats = cache(read, ttl=1)
    callers = [asyncio.create_task(stats.get()) for _ in range(50)]
    await until_called(read)
    read.gate.set()
    results = await asyncio.gather(*callers)
    assert read.calls == stats.reads == 1
    assert {r.total for r in results} == {1}


async def test_reused_for_ttl_then_read_again() -> None:
    read, clock = FakeRead(), Clock()
    stats = cache(read, ttl=1, clock=clock)
    assert (await stats.get()).total == 1
    clock.now += 0.99
    assert (await stats.get()).total == 1
    assert read.calls == 1
    clock.now += 1.01  # 2 s old: too old to answer, the caller waits for a new read
    assert (await stats.get()).total == 2
    last = stats.last()
    assert last is not None
    assert last.snapshot.total == 2
    assert stats.age(last) == 0


async def test_past_ttl_the_old_snapshot_answers_while_a_new_one_is_read() -> None:
    read, clock = FakeRead(), Clock()
    stats = cache(read, ttl=1, clock=clock)
    assert (await stats.get()).total == 1
    read.called.clear()
    read.gate.clear()
    clock.now += 1.5
    assert (await stats.get()).total == 1  # at once, though a read started
    assert (await stats.get()).total == 1  # and no second one
    await until_called(read)
    assert stats.reads == read.calls == 2
    read.gate.set()
    clock.now += 0.5  # the old one is now 2 s old: the caller gets the read under way
    assert (await stats.get()).total == 2
    assert read.calls == 2


async def test_zero_turns_it_off_but_keeps_the_last() -> None:
    read = FakeRead()
    stats = cache(read, ttl=0)
    assert stats.last() is None
    assert [(await stats.get()).total for _ in range(3)] == [1, 2, 3]
    last = stats.last()
    assert last is not None
    assert last.snapshot.total == 3


async def test_a_failure_reaches_every_waiting_caller_and_is_not_kept() -> None:
    read = FakeRead()
    read.gate.clear()
    read.fail = ConnectionError("down")
    stats = cache(read, ttl=10)
    callers = [asyncio.create_task(stats.get()) for _ in range(5)]
    await until_called(read)
    read.gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert read.calls == 1
    assert stats.last() is None
    read.fail = None
    assert (await stats.get()).total == 2  # the next caller reads again at once


async def test_a_caller_that_gives_up_does_not_cancel_the_shared_read() -> None:
    read = FakeRead()
    read.gate.clear()
    stats = cache(read, ttl=10)
    impatient = asyncio.create_task(stats.get())
    patient = asyncio.create_task(stats.get())
    await until_called(read)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    read.gate.set()
    assert (await patient).total == 1
    assert read.calls == 1


async def test_the_read_is_bounded_by_its_timeout() -> None:
    read = FakeRead()
    read.gate.clear()
    stats = StatsCache(read, ttl=10, timeout=0.05)
    with pytest.raises(TimeoutError):
        await stats.get()
    read.gate.set()
    assert (await stats.get()).total == 2


async def test_close_cancels_a_read_under_way() -> None:
    read = FakeRead()
    read.gate.clear()
    stats = cache(read, ttl=10)
    caller = asyncio.create_task(stats.get())
    await until_called(read)
    await stats.close()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert stats.last() is None
