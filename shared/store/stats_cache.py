"""Queue statistics read at most once per interval, shared by every caller of a process.

`GET /queues`, the API's `/metrics` and the dashboard all want the same numbers, and each
read costs commands per queue. `StatsCache` keeps the last snapshot for `ttl` seconds
(counted from when its read finished) and makes concurrent callers share one read: while a
read is under way, every caller awaits that same read (single flight). A snapshot past
`ttl` but younger than `2 * ttl` is still answered at once while a read of a newer one
runs in the background (so a caller waits for a read only when there is no snapshot young
enough, not every `ttl`). A failed read is not kept: the callers awaiting it get the error,
and the next caller starts a new read. A `ttl` of 0 turns
the cache off: every caller reads for itself. Either way the last snapshot read stays
available (`last`) to a caller that must not read Redis itself (`/readyz`).

The read runs in a task of its own, bounded by `timeout`: a caller that gives up (its
request deadline, a client gone) stops waiting without cancelling the read the others
wait for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from conveyor.store.inspect import QueueSnapshot


@dataclass(frozen=True, slots=True)
class Cached:
    """A snapshot and when its read finished (`time.monotonic` seconds)."""

    snapshot: QueueSnapshot
    read_at: float


class StatsCache:
    def __init__(
        self,
        read: Callable[[], Awaitable[QueueSnapshot]],
        *,
        ttl: float,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self.ttl = ttl
        self.timeout = timeout
        self._clock = clock
        self._last: Cached | None = None
        self._flight: asyncio.Task[QueueSnapshot] | None = None
        self.reads = 0  # reads started, for tests and operators

    def last(self) -> Cached | None:
        """The last snapshot read, however old, without reading Redis (None: none yet)."""
        return self._last

    def age(self, cached: Cached) -> float:
        """Seconds since `cached` was read."""
        return max(0.0, self._clock() - cached.read_at)

    async def get(self) -> QueueSnapshot:
        """A snapshot at most `ttl` seconds old (at most `2 * ttl` while a newer one is
        being read): the cached one, the one being read now, or a new read. Raises what
        the read raised."""
        if self.ttl <= 0:
            self.reads += 1
            snapshot = await self._bounded()
            self._last = Cached(snapshot, self._clock())
            return snapshot
        last = self._last
        age = None if last is None else self._clock() - last.read_at
        if last is not None and age is not None and age < self.ttl:
            return last.snapshot
        flight = self._flight
        if flight is None:
            self.reads += 1
            flight = self._flight = asyncio.create_task(self._bounded())
            flight.add_done_callback(self._landed)
        if last is not None and age is not None and age < 2 * self.ttl:
            return last.snapshot  # the read goes on in the background
        return await asyncio.shield(flight)

    async def close(self) -> None:
        """Cancel a read under way (at shutdown)."""
        flight, self._flight = self._flight, None
        if flight is not None and not flight.done():
            flight.cancel()
            await asyncio.gather(flight, return_exceptions=True)

    async def _bounded(self) -> QueueSnapshot:
        async with asyncio.timeout(self.timeout):
            return await self._read()

    def _landed(self, flight: asyncio.Task[QueueSnapshot]) -> None:
        if self._flight is flight:
            self._flight = None
        if flight.cancelled():
            return
        if flight.exception() is None:  # also marks a failure as seen when nobody waits
            self._last = Cached(flight.result(), self._clock())
