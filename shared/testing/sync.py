"""`SyncConveyorTest`: `ConveyorTest` for synchronous tests (no event loop in the test).

The async harness runs on a private event loop in a background thread, and `.client` is
a `SyncClient` on the same in-memory server: the blocking calls wait for those loops.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable
from types import TracebackType
from typing import Any, Self, TypeVar

from conveyor.client import SyncClient
from conveyor.testing.harness import AttemptResult, ConveyorTest

T = TypeVar("T")


class SyncConveyorTest:
    """Takes the arguments of `ConveyorTest`; use it as
    ``with SyncConveyorTest(handlers=[resize]) as cv:`` and call ``cv.drain()``."""

    def __init__(self, handlers: Iterable[object] = (), **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="conveyor-test", daemon=True
        )
        self._thread.start()
        try:
            self.harness: ConveyorTest = self._call(_open(list(handlers), options))
        except BaseException:
            self._stop_loop()
            raise
        self.client: SyncClient = self.harness.sync_client()

    def drain(self, *, include_delayed: bool = False, timeout: float = 30.0) -> list[AttemptResult]:
        """`ConveyorTest.drain`, blocking."""
        return self._call(self.harness.drain(include_delayed=include_delayed, timeout=timeout))

    def promote_due(self) -> int:
        """`ConveyorTest.promote_due`, blocking."""
        return self._call(self.harness.promote_due())

    def close(self) -> None:
        self.client.close()
        self._call(self.harness.aclose())
        self._stop_loop()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def _open(handlers: list[object], options: dict[str, Any]) -> ConveyorTest:
    """Built and started inside the harness's loop, where its tasks will run."""
    harness = ConveyorTest(handlers, **options)
    return await harness.__aenter__()
