"""The blocking form of an async client: one implementation for `SyncClient` and
`SyncHttpClient`.

The async client lives on a private event loop in a daemon thread; each call is sent to
that loop and waited for. So the sync clients run exactly the async clients' code (one
code path, not two) and their methods are those of `SyncJobsClient`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import Future
from typing import Any, Generic, Self, TypeVar, Unpack

from conveyor.client_api import (
    AsyncJobsClient,
    EnqueueOptions,
    Item,
    Jobs,
    ListFilter,
    Queues,
    Workers,
)
from conveyor.job import Job
from conveyor.values import CancelOutcome, Page, QueueStats

T = TypeVar("T")
C = TypeVar("C", bound=AsyncJobsClient)
STOP_WAIT_SECONDS = 5.0  # how long `close` waits for the loop's thread to end


class Blocking(Generic[C]):
    """Runs the async client that `make` builds (called on the private loop, so a client
    that binds to its loop binds to that one) and offers its calls, blocking."""

    def __init__(self, make: Callable[[], C]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        try:
            self._client: C = self._run(_build(make))
        except BaseException:
            self._stop()
            raise

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()

    def enqueue(self, job_type: str, payload: Any = None, **options: Unpack[EnqueueOptions]) -> Job:
        return self._run(self._client.enqueue(job_type, payload, **options))

    def enqueue_many(self, jobs: Iterable[Item], *, correlation_id: str | None = None) -> Jobs:
        items = list(jobs)  # a generator is read here, not on the loop's thread
        return self._run(self._client.enqueue_many(items, correlation_id=correlation_id))

    def get(self, job_id: str) -> Job:
        return self._run(self._client.get(job_id))

    def cancel(self, job_id: str) -> tuple[CancelOutcome, Job]:
        return self._run(self._client.cancel(job_id))

    def replay(self, job_id: str) -> Job:
        return self._run(self._client.replay(job_id))

    def list(self, **filters: Unpack[ListFilter]) -> Page:
        return self._run(self._client.list(**filters))

    def queues(self) -> Queues:
        return self._run(self._client.queues())

    def queue(self, name: str) -> QueueStats | None:
        return self._run(self._client.queue(name))

    def pause_queue(self, name: str) -> QueueStats | None:
        return self._run(self._client.pause_queue(name))

    def resume_queue(self, name: str) -> QueueStats | None:
        return self._run(self._client.resume_queue(name))

    def workers(self) -> Workers:
        return self._run(self._client.workers())

    def resize_worker(self, worker_id: str, concurrency: int | None) -> bool:
        return self._run(self._client.resize_worker(worker_id, concurrency))

    def resize_queue(self, queue: str, concurrency: int | None) -> bool:
        return self._run(self._client.resize_queue(queue, concurrency))

    def close(self) -> None:
        """Close the client and end its loop's thread; closing again does nothing."""
        if self._loop.is_closed():
            return
        try:
            self._run(self._client.aclose())
        finally:
            self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STOP_WAIT_SECONDS)
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _build(make: Callable[[], C]) -> C:
    return make()
