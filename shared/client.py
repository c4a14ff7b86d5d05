"""A small typed client for producers: enqueue and inspect jobs without HTTP.

It runs the same Lua scripts as the API, so a job created here is indistinguishable from
one created over HTTP. `Client` is async; `SyncClient` offers the same calls, blocking,
by running a private event loop in a background thread (one code path, not two).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Sequence
from concurrent.futures import Future
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from redis.asyncio import Redis

from conveyor import jobspec
from conveyor.ids import validate_job_id, validate_queue
from conveyor.job import Job
from conveyor.redis_conn import connect_url, is_cluster
from conveyor.states import Status
from conveyor.store.inspect import QueueStats, all_queue_stats, queue_stats
from conveyor.store.keys import Keys
from conveyor.store.producer import PURGE_BATCH, CancelOutcome, ListQuery, Page, ProducerStore
from conveyor.store.workers import WorkerRegistry

T = TypeVar("T")
DEFAULT_TTL = 7 * 86_400
DEFAULT_MAX_PAYLOAD = 1024 * 1024
DEFAULT_IDEMPOTENCY_TTL = 86_400


class Client:
    def __init__(
        self,
        redis: Redis,
        *,
        key_prefix: str = "conveyor",
        result_ttl_seconds: int = DEFAULT_TTL,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD,
        idempotency_ttl_seconds: int = DEFAULT_IDEMPOTENCY_TTL,
        wait_replicas: int = 0,
        wait_timeout_seconds: float = 0.5,
    ) -> None:
        """`wait_replicas` > 0: every enqueue waits (Redis WAIT, at most
        `wait_timeout_seconds`) until that many replicas have the jobs, and raises
        `NotReplicated` (naming the jobs, which may exist) when fewer confirmed in time."""
        self.redis = redis
        self.keys = Keys(key_prefix)
        self.max_payload_bytes = max_payload_bytes
        if wait_replicas and is_cluster(redis):
            raise ValueError("wait_replicas needs a standalone or Sentinel Redis, not a Cluster")
        self.store = ProducerStore(
            redis,
            self.keys,
            result_ttl_seconds=result_ttl_seconds,
            idempotency_ttl_seconds=idempotency_ttl_seconds,
            wait_replicas=wait_replicas,
            wait_timeout_ms=int(wait_timeout_seconds * 1000),
        )

    @classmethod
    def from_url(cls, url: str, *, timeout_seconds: float = 5.0, **options: Any) -> Client:
        """A client for `url`: ``redis://``, ``rediss://``, ``unix://``,
        ``redis+cluster://`` or ``redis+sentinel://`` (see docs/scaling.md)."""
        return cls(connect_url(url, timeout_seconds=timeout_seconds), **options)

    async def enqueue(
        self,
        job_type: str,
        payload: Any = None,
        *,
        queue: str = "default",
        max_attempts: int | None = None,
        timeout_seconds: float | None = None,
        delay_seconds: float | None = None,
        run_at: datetime | None = None,
        correlation_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Create a job. With an `idempotency_key`, a second call with the same key and the
        same arguments (within the idempotency ttl, per queue) returns the first call's job
        instead of creating another; other arguments raise `IdempotencyConflict`."""
        spec = jobspec.build(
            job_type,
            payload,
            queue=queue,
            max_attempts=max_attempts,
            timeout_seconds=timeout_seconds,
            delay_seconds=delay_seconds,
            run_at=run_at,
            correlation_id=correlation_id,
            max_payload_bytes=self.max_payload_bytes,
            idempotency_key=idempotency_key,
        )
        return (await self.store.enqueue([spec]))[0]

    async def enqueue_many(
        self, jobs: Iterable[tuple[str, Any] | tuple[str, Any, dict[str, Any]]]
    ) -> list[Job]:
        """Create many jobs in one pipelined round trip: `(type, payload[, options])`,
        where options are the keyword arguments of `enqueue`. All are validated first."""
        specs = []
        for i, item in enumerate(jobs):
            job_type, payload = item[0], item[1]
            options: dict[str, Any] = item[2] if len(item) > 2 else {}
            specs.append(
                jobspec.build(
                    job_type,
                    payload,
                    max_payload_bytes=self.max_payload_bytes,
                    field_prefix=f"jobs/{i}/",
                    **options,
                )
            )
        return await self.store.enqueue(specs)

    async def get(self, job_id: str) -> Job:
        return await self.store.get(validate_job_id(job_id))

    async def cancel(self, job_id: str) -> tuple[CancelOutcome, Job]:
        return await self.store.cancel(validate_job_id(job_id))

    async def replay(self, job_id: str) -> Job:
        """Run a failed or canceled job again; `InvalidTransition` for other statuses."""
        return await self.store.replay(validate_job_id(job_id))

    async def purge(self, queue: str, status: str, limit: int = PURGE_BATCH) -> int:
        """Delete the finished jobs (completed, failed or canceled) of one queue in `status`
        now, in batches of `limit`; the number removed. They cannot be replayed afterwards."""
        return await self.store.purge(validate_queue(queue), status, limit)

    async def queues(self) -> list[QueueStats]:
        """Statistics of every known queue, sorted by name."""
        return await all_queue_stats(self.redis, self.keys)

    async def queue(self, name: str) -> QueueStats | None:
        """Statistics of one queue; None when no job was ever enqueued to it."""
        return await queue_stats(self.redis, self.keys, validate_queue(name))

    async def workers(self) -> list[dict[str, Any]]:
        """The live workers and what their last heartbeat said about them."""
        return await WorkerRegistry(self.redis, self.keys).live()

    async def list(
        self,
        *,
        status: str | Sequence[str] | None = None,
        queue: str | None = None,
        type: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        statuses = (status,) if isinstance(status, str) else tuple(status or ())
        return await self.store.list_jobs(
            ListQuery(
                statuses=tuple(Status(s) for s in statuses),
                queue=None if queue is None else validate_queue(queue),
                type=type,
                limit=limit,
                cursor=None if cursor is None else validate_job_id(cursor, "cursor"),
            )
        )

    async def aclose(self) -> None:
        await self.redis.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class SyncClient:
    """The blocking form of `Client`, for scripts and synchronous web apps."""

    def __init__(self, factory: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._client: Client = self._run(_make(factory))

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SyncClient:
        return cls(lambda: Client.from_url(url, **options))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()

    def enqueue(self, job_type: str, payload: Any = None, **options: Any) -> Job:
        return self._run(self._client.enqueue(job_type, payload, **options))

    def enqueue_many(
        self, jobs: Iterable[tuple[str, Any] | tuple[str, Any, dict[str, Any]]]
    ) -> list[Job]:
        return self._run(self._client.enqueue_many(list(jobs)))

    def get(self, job_id: str) -> Job:
        return self._run(self._client.get(job_id))

    def cancel(self, job_id: str) -> tuple[CancelOutcome, Job]:
        return self._run(self._client.cancel(job_id))

    def replay(self, job_id: str) -> Job:
        return self._run(self._client.replay(job_id))

    def purge(self, queue: str, status: str, limit: int = PURGE_BATCH) -> int:
        return self._run(self._client.purge(queue, status, limit))

    def queues(self) -> list[QueueStats]:
        return self._run(self._client.queues())

    def queue(self, name: str) -> QueueStats | None:
        return self._run(self._client.queue(name))

    def workers(self) -> list[dict[str, Any]]:
        return self._run(self._client.workers())

    def list(self, **filters: Any) -> Page:
        return self._run(self._client.list(**filters))

    def close(self) -> None:
        self._run(self._client.aclose())
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


async def _make(factory: Any) -> Client:
    client: Client = factory()
    return client
