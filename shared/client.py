"""A small typed client for producers: enqueue and inspect jobs without HTTP.

It runs the same Lua scripts as the API, so a job created here is indistinguishable from
one created over HTTP. `Client` is async; `SyncClient` offers the same calls, blocking,
by running a private event loop in a background thread (`conveyor.blocking`: one code
path, not two). Both have the interface of `conveyor.client_api`, as the HTTP clients do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Unpack

from redis.asyncio import Redis

from conveyor import jobspec
from conveyor.blocking import Blocking
from conveyor.client_api import (
    AsyncClosing,
    EnqueueOptions,
    Item,
    Jobs,
    ListFilter,
    Queues,
    Workers,
)
from conveyor.ids import validate_job_id, validate_queue
from conveyor.job import Job
from conveyor.jobspec import valid_concurrency, validate_worker_id
from conveyor.redis_conn import connect_url, is_cluster
from conveyor.redis_multiplex import MultiplexedRedis, connect_multiplexed_url
from conveyor.schedules import parse_schedule, validate_schedule_name
from conveyor.store.concurrency import ConcurrencyStore
from conveyor.store.inspect import all_queue_stats, queue_stats
from conveyor.store.keys import Keys
from conveyor.store.limits import LimitsStore, LimitState, parse_limit, validate_limit_key
from conveyor.store.pause import set_paused
from conveyor.store.producer import ProducerStore
from conveyor.store.schedules import DEFAULT_MAX_SCHEDULES, Schedule, ScheduleStore
from conveyor.store.workers import WorkerRegistry
from conveyor.values import CancelOutcome, Page, QueueStats

DEFAULT_TTL = 7 * 86_400
DEFAULT_MAX_PAYLOAD = 1024 * 1024
DEFAULT_IDEMPOTENCY_TTL = 86_400
DEFAULT_MAX_QUEUES = 1000  # as the setting CONVEYOR_MAX_QUEUES
DEFAULT_MAX_LIMITS_PER_QUEUE = 100  # as the setting CONVEYOR_MAX_LIMITS_PER_QUEUE


class Client(AsyncClosing):
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
        max_queues: int = DEFAULT_MAX_QUEUES,
        hot_redis: MultiplexedRedis | None = None,
        max_limits_per_queue: int = DEFAULT_MAX_LIMITS_PER_QUEUE,
        max_schedules: int = DEFAULT_MAX_SCHEDULES,
    ) -> None:
        """`max_queues`: a job for a queue not yet in use while that many hold jobs raises
        `QueueLimitReached`, nothing written. `wait_replicas` > 0: every enqueue waits
        (Redis WAIT, at most `wait_timeout_seconds`) until that many replicas have the
        jobs, and raises `NotReplicated` (naming the jobs, which may exist) when fewer
        confirmed in time. `hot_redis`: a multiplexed connection for the enqueue round
        trip (`from_url` opens one where the URL allows, ADR 9); closed with the client."""
        self.redis = redis
        self.hot_redis = hot_redis
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
            max_queues=max_queues,
            hot_redis=hot_redis,
        )
        self._limits = LimitsStore(redis, self.keys, max_per_queue=max_limits_per_queue)
        self.schedule_store = ScheduleStore(redis, self.keys, max_schedules=max_schedules)

    @classmethod
    def from_url(cls, url: str, *, timeout_seconds: float = 5.0, **options: Any) -> Client:
        """A client for `url`: ``redis://``, ``rediss://``, ``unix://``,
        ``redis+cluster://`` or ``redis+sentinel://`` (see docs/scaling.md)."""
        hot = connect_multiplexed_url(url, timeout_seconds=timeout_seconds)
        return cls(connect_url(url, timeout_seconds=timeout_seconds), hot_redis=hot, **options)

    async def enqueue(
        self, job_type: str, payload: Any = None, **options: Unpack[EnqueueOptions]
    ) -> Job:
        """Create a job. With an `idempotency_key`, a second call with the same key and the
        same arguments (within the idempotency ttl, per queue) returns the first call's job
        instead of creating another; other arguments raise `IdempotencyConflict`."""
        spec = jobspec.build(job_type, payload, max_payload_bytes=self.max_payload_bytes, **options)
        return (await self.store.enqueue([spec]))[0]

    async def enqueue_many(
        self, jobs: Iterable[Item], *, correlation_id: str | None = None
    ) -> Jobs:
        """Create many jobs in one pipelined round trip: `(type, payload[, options])`,
        options being those of `enqueue` but the correlation id, which is the batch's.
        All are validated first."""
        specs = []
        for i, item in enumerate(jobs):
            job_type, payload, options = jobspec.batch_options(item, i)
            specs.append(
                jobspec.build(
                    job_type,
                    payload,
                    max_payload_bytes=self.max_payload_bytes,
                    field_prefix=f"jobs/{i}/",
                    correlation_id=correlation_id,
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

    async def purge(self, queue: str, status: str, batch: int | None = None) -> int:
        """Delete the finished jobs (completed, failed, canceled, expired) of one queue in
        `status` now, `batch` per script call; the number removed. They cannot be replayed
        afterwards. (Redis only: not part of `AsyncJobsClient`.)"""
        return await self.store.purge(validate_queue(queue), status, batch)

    async def set_limit(
        self,
        queue: str,
        key: str,
        *,
        max_running: int | None = None,
        max_per_second: float | None = None,
        burst: int | None = None,
    ) -> bool:
        """Set the concurrency and/or rate limit of `key` on `queue` (``queue``,
        ``type:<job type>`` or a jobs' `limit_key`); True when the key had none. Raises
        `LimitCountReached` beyond `max_limits_per_queue` keys. (Redis only.)"""
        given = {"max_running": max_running, "max_per_second": max_per_second, "burst": burst}
        limit = parse_limit({k: v for k, v in given.items() if v is not None})
        return await self._limits.set(validate_queue(queue), validate_limit_key(key), limit)

    async def limits(self, queue: str) -> list[LimitState]:
        """The limit keys of `queue` with their limits, running slots and held jobs."""
        return await self._limits.states(validate_queue(queue))

    async def delete_limit(self, queue: str, key: str) -> bool:
        """Remove the limits of `key` on `queue` (its held jobs start); False: it had none."""
        return await self._limits.delete(validate_queue(queue), validate_limit_key(key))

    async def queues(self) -> Queues:
        """Statistics of every known queue, sorted by name."""
        return await all_queue_stats(self.redis, self.keys)

    async def queue(self, name: str) -> QueueStats | None:
        """Statistics of one queue; None when no job was ever enqueued to it."""
        return await queue_stats(self.redis, self.keys, validate_queue(name))

    async def pause_queue(self, name: str) -> QueueStats | None:
        """Pause the queue: none of its jobs starts until `resume_queue` (running ones
        finish). Its statistics after; None when the queue is unknown."""
        return await set_paused(self.redis, self.keys, validate_queue(name), True)

    async def resume_queue(self, name: str) -> QueueStats | None:
        """Resume a paused queue; its statistics after, None when the queue is unknown."""
        return await set_paused(self.redis, self.keys, validate_queue(name), False)

    async def workers(self) -> Workers:
        """The live workers and what their last heartbeat said about them, by id."""
        return await WorkerRegistry(self.redis, self.keys).infos()

    async def resize_worker(self, worker_id: str, concurrency: int | None) -> bool:
        """Ask a running worker to run `concurrency` jobs at once (None: back to its
        queue's or its own); False when it is not live."""
        store = ConcurrencyStore(self.redis, self.keys)
        return await store.set_worker(validate_worker_id(worker_id), valid_concurrency(concurrency))

    async def resize_queue(self, queue: str, concurrency: int | None) -> bool:
        """Ask every worker of `queue` to run `concurrency` jobs at once (None clears it);
        False when no such queue is known."""
        name = validate_queue(queue)
        if not await self.redis.sismember(self.keys.queues, name):
            return False
        await ConcurrencyStore(self.redis, self.keys).set_queue(
            name, valid_concurrency(concurrency)
        )
        return True

    async def list(self, **filters: Unpack[ListFilter]) -> Page:
        """One page of jobs, newest first (see `ListFilter`)."""
        return await self.store.list_jobs(jobspec.list_query(filters))

    # -- periodic schedules (Redis only: not part of `AsyncJobsClient`) ---------------------

    async def put_schedule(self, name: str, job_type: str, **definition: Any) -> Schedule:
        """Create or replace the periodic schedule `name`, whose jobs are of `job_type`;
        `definition` takes the fields of ``PUT /schedules/{name}`` (payload, queue, cron,
        timezone, every_seconds, max_attempts, timeout_seconds, overlap, catch_up).
        `ValidationError` names the first bad field; `ScheduleLimitReached` when it is new
        and `max_schedules` exist. Idempotent: the same call again changes nothing but
        `updated_at` (and keeps the next fire time)."""
        spec, errors, too_large = parse_schedule(
            name, {"type": job_type, **definition}, max_payload_bytes=self.max_payload_bytes
        )
        if errors:
            raise errors[0]
        if too_large is not None:
            raise too_large
        assert spec is not None
        return (await self.schedule_store.put(spec))[0]

    async def schedule(self, name: str) -> Schedule:
        """One schedule; `ScheduleNotFound` when there is none."""
        return await self.schedule_store.get(validate_schedule_name(name))

    async def schedules(self) -> tuple[Schedule, ...]:
        """Every schedule, by name."""
        return tuple(await self.schedule_store.all())

    async def delete_schedule(self, name: str) -> None:
        """Delete a schedule (the jobs it created stay); `ScheduleNotFound` when none."""
        await self.schedule_store.delete(validate_schedule_name(name))

    async def aclose(self) -> None:
        if self.hot_redis is not None:
            await self.hot_redis.aclose()
        await self.redis.aclose()


class SyncClient(Blocking[Client]):
    """The blocking form of `Client`, for scripts and synchronous web apps."""

    def __init__(self, factory: Callable[[], Client]) -> None:
        super().__init__(factory)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SyncClient:
        return cls(lambda: Client.from_url(url, **options))

    def purge(self, queue: str, status: str, batch: int | None = None) -> int:
        return self._run(self._client.purge(queue, status, batch))

    def set_limit(
        self,
        queue: str,
        key: str,
        *,
        max_running: int | None = None,
        max_per_second: float | None = None,
        burst: int | None = None,
    ) -> bool:
        return self._run(
            self._client.set_limit(
                queue, key, max_running=max_running, max_per_second=max_per_second, burst=burst
            )
        )

    def limits(self, queue: str) -> list[LimitState]:
        return self._run(self._client.limits(queue))

    def delete_limit(self, queue: str, key: str) -> bool:
        return self._run(self._client.delete_limit(queue, key))

    def put_schedule(self, name: str, job_type: str, **definition: Any) -> Schedule:
        return self._run(self._client.put_schedule(name, job_type, **definition))

    def schedule(self, name: str) -> Schedule:
        return self._run(self._client.schedule(name))

    def schedules(self) -> tuple[Schedule, ...]:
        return self._run(self._client.schedules())

    def delete_schedule(self, name: str) -> None:
        self._run(self._client.delete_schedule(name))
