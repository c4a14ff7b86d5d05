"""`ConveyorTest`: a producer client and one worker on an in-memory Redis, in one process.

The worker side is the worker's own parts, driven step by step instead of by background
loops: `ConsumerStore` reads and claims deliveries (the claim script), `Executor` calls
the handler under its timeout and decides retry or failure, `Finisher` writes the outcome
(the complete, fail and requeue scripts), and `LeaseKeeper` renews running jobs, which is
how a cancel requested while a job runs reaches it (the renew script reports it).
Delayed jobs move to their queue through the promote script, as the scheduler moves them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import fakeredis
from fakeredis.aioredis import FakeRedis

from conveyor.backoff import RetryPolicy
from conveyor.client import Client, SyncClient
from conveyor.config import Settings
from conveyor.errors import ConfigError, ConveyorError, ValidationError
from conveyor.store.consumer import ClaimedJob, ConsumerStore, Delivery
from conveyor.store.keys import Keys
from conveyor.store.scheduling import SchedulerStore
from conveyor.testing.context import TEST_WORKER_ID
from conveyor.testing.selection import select
from conveyor.worker.context import JobContext
from conveyor.worker.executor import Attempt, ExecutionDefaults, Executor
from conveyor.worker.finisher import Finisher
from conveyor.worker.lease import LeaseKeeper
from conveyor.worker.registry import Registry, default_registry
from conveyor.worker.retry import attempt_limits

# How often running jobs are renewed while `drain` waits for them: a cancel requested
# meanwhile stops its job within this long.
RENEW_EVERY_SECONDS = 0.02
# A drain that timed out gives a running handler this long to end once cancelled.
ABANDON_AFTER_SECONDS = 2.0
READ_BLOCK_MS = 1  # XREADGROUP waits this long when no entry is there: the queue is idle
PROMOTE_BATCH = 500


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """One attempt `drain` ran, and the job's status after its outcome was written:
    'completed', 'retrying', 'failed' or 'canceled' (or 'pending' when it was handed
    back, 'stale' when the attempt was no longer this worker's)."""

    job_id: str
    job_type: str
    attempt: int
    status: str
    error: str | None = None  # the failure written for the attempt, if it failed


class DrainTimeout(ConveyorError):
    """`drain` did not reach an idle queue within its timeout."""

    def __init__(self, timeout: float, running: Sequence[str]) -> None:
        still = f"; still running: {', '.join(running)}" if running else ""
        super().__init__(f"the queues were not idle after {timeout:g}s{still}")
        self.running = list(running)


class ConveyorTest:
    """A `Client` (`.client`) and a worker for `handlers`, on one fakeredis server.

    `handlers` are the handlers this worker runs, each given as registered with
    `@conveyor.handler` (or by its job type name); they are looked up in `registry`
    (default: the registry `@conveyor.handler` fills). Empty: every handler of `registry`.
    The other options are the worker settings of the same names; a bad value raises
    `ConfigError` naming it.

    Use it as ``async with ConveyorTest(handlers=[build]) as cv:``; jobs run only while
    `drain` is awaited. Each instance has its own in-memory server: tests share nothing.
    """

    def __init__(
        self,
        handlers: Iterable[object] = (),
        *,
        registry: Registry | None = None,
        queues: Sequence[str] = ("default",),
        concurrency: int = 10,
        max_attempts: int = 3,
        job_timeout_seconds: float = 300.0,
        retry: RetryPolicy | None = None,
        key_prefix: str = "conveyor",
        max_deliveries: int = 5,
    ) -> None:
        if isinstance(queues, str):  # tuple("default") would be seven one-letter queues
            raise ConfigError([f"queues: a list of queue names, not the string {queues!r}"])
        policy = retry or RetryPolicy()
        self.settings = Settings(
            key_prefix=key_prefix,
            queues=tuple(queues),
            concurrency=concurrency,
            max_attempts=max_attempts,
            job_timeout_seconds=job_timeout_seconds,
            retry_base_seconds=policy.base_seconds,
            retry_factor=policy.factor,
            retry_max_seconds=policy.max_seconds,
            retry_jitter=policy.jitter.value,
            max_deliveries=max_deliveries,
        )
        self.registry = select(handlers, registry or default_registry)
        self.server = fakeredis.FakeServer()
        self.redis = FakeRedis(server=self.server)
        self.keys = Keys(self.settings.key_prefix)
        self.client = self._client(self.redis)
        self.store = ConsumerStore(
            self.redis,
            self.keys,
            TEST_WORKER_ID,
            max_deliveries=self.settings.max_deliveries,
            result_ttl_seconds=self.settings.result_ttl_seconds,
            attempt_limits=attempt_limits(self.registry, self.settings.max_attempts),
        )
        self.scheduler = SchedulerStore(
            self.redis, self.keys, ttl_ms=self.settings.result_ttl_seconds * 1000
        )
        self.executor = Executor(
            self.registry,
            ExecutionDefaults(
                self.settings.max_attempts,
                self.settings.job_timeout_seconds,
                self.settings.retry_policy,
                max_result_bytes=self.settings.max_payload_bytes,
            ),
            threads=self.settings.concurrency,
        )
        self.finisher = Finisher(
            self.store, self.keys.schedule_channel, give_up_after=self.settings.lease_seconds
        )
        self.attempts: dict[str, Attempt] = {}  # running now, by job id
        self._finishing: asyncio.Task[None] | None = None
        self._groups_ready = False
        self._interrupted: list[str] = []  # jobs running when a drain timed out
        # Attempts of a timed-out drain whose handler ignored its cancellation: running on.
        self.abandoned: set[asyncio.Task[AttemptResult]] = set()

    @property
    def queues(self) -> list[str]:
        return list(self.settings.queues)

    def sync_client(self) -> SyncClient:
        """A `SyncClient` on the same in-memory server, for code under test that is
        synchronous; close it (``with cv.sync_client() as client:``)."""
        return SyncClient(lambda: self._client(FakeRedis(server=self.server)))

    def _client(self, redis: FakeRedis) -> Client:
        return Client(
            redis,
            key_prefix=self.settings.key_prefix,
            result_ttl_seconds=self.settings.result_ttl_seconds,
            max_payload_bytes=self.settings.max_payload_bytes,
            idempotency_ttl_seconds=self.settings.idempotency_ttl_seconds,
        )

    # -- running jobs ------------------------------------------------------------------------

    async def drain(
        self,
        *,
        include_delayed: bool = False,
        timeout: float = 30.0,  # noqa: ASYNC109 - a deadline for the whole drain, reported
    ) -> list[AttemptResult]:
        """Run jobs until none of the worker's queues has a job waiting; the attempts run,
        in the order they ended.

        Jobs run in rounds of up to `concurrency` (a round ends when all its jobs have);
        jobs enqueued meanwhile (by a handler, or by the test while `drain` runs as a task)
        run in a later round. Delayed jobs are not waited for: with
        `include_delayed`, every scheduled or retrying job of the worker's queues is made
        due at once and run, again and again until none is left, so a job that keeps
        failing ends failed after its last attempt. Their `run_at`/`next_run_at` keep the
        times they were due at.

        Raises `DrainTimeout` when the queues are not idle after `timeout` seconds; jobs
        still running then are stopped (cancelled) and left running in the store, as after
        a crash; a handler that ignores its cancellation is left running.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValidationError("timeout", f"must be a number of seconds > 0, got {timeout!r}")
        await self._start()
        self._interrupted = []
        done: list[AttemptResult] = []
        try:
            async with asyncio.timeout(timeout) as deadline:
                while True:
                    if include_delayed:
                        await self._promote(everything=True)
                    deliveries = await self.store.read(
                        self.queues, count=self.settings.concurrency, block_ms=READ_BLOCK_MS
                    )
                    if not deliveries:
                        return done
                    done += await self._run(deliveries)
        except TimeoutError:
            if not deadline.expired():  # not drain's own deadline
                raise
            raise DrainTimeout(timeout, self._interrupted) from None

    async def promote_due(self) -> int:
        """Move the delayed jobs that are due by the clock onto their queues, as a
        scheduler does; how many moved. `drain` runs them."""
        return await self._promote(everything=False)

    async def _start(self) -> None:
        if not self._groups_ready:
            await self.store.ensure_groups(self.queues)
            self._groups_ready = True
        if self._finishing is None:
            self._finishing = asyncio.create_task(self.finisher.run(), name="conveyor-finisher")

    async def _run(self, deliveries: list[Delivery]) -> list[AttemptResult]:
        claimed = await self.store.claim(deliveries)
        stop_renewing = asyncio.Event()
        renewing = asyncio.create_task(self._renew(stop_renewing))
        tasks = [asyncio.create_task(self._attempt(job)) for job in claimed.run]
        ended: list[AttemptResult] = []
        try:
            for next_done in asyncio.as_completed(tasks):
                ended.append(await next_done)
        except asyncio.CancelledError:  # drain's timeout: say which jobs kept it busy
            self._interrupted = sorted(self.attempts)
            raise
        finally:
            stop_renewing.set()
            left = await _cancel_and_wait(tasks)
            self.abandoned.update(left)
            for task in left:
                task.add_done_callback(self.abandoned.discard)
            await renewing
        return ended

    async def _renew(self, stop: asyncio.Event) -> None:
        """Renew the running jobs every RENEW_EVERY_SECONDS until `stop` is set: the renew
        script reports a cancel requested meanwhile, and the keeper stops that job.

        Ended by an event, not by cancelling it: on Python 3.11 a cancellation that comes
        as a Redis call completes can be lost (see `_cancel_and_wait`)."""
        keeper = LeaseKeeper(self.store, self.attempts, [], interval=RENEW_EVERY_SECONDS)
        stopped = asyncio.ensure_future(stop.wait())
        while not stop.is_set():
            await asyncio.wait([stopped], timeout=RENEW_EVERY_SECONDS)
            if not stop.is_set():
                await keeper.renew_once()

    async def _attempt(self, job: ClaimedJob) -> AttemptResult:
        _, max_attempts, _ = self.executor.limits(job)
        ctx = JobContext(
            job_id=job.job_id,
            type=job.type,
            queue=job.queue,
            attempt=job.attempt,
            max_attempts=max_attempts,
            correlation_id=job.correlation_id,
            worker_id=TEST_WORKER_ID,
        )
        attempt = Attempt(job, ctx)
        attempt.task = asyncio.current_task()
        self.attempts[job.job_id] = attempt
        try:
            finish = await self.executor.execute(attempt)
        finally:
            del self.attempts[job.job_id]  # no renewal (and so no stop) while it is written
        if finish is None:
            return AttemptResult(job.job_id, job.type, job.attempt, "stale")
        status = await self.finisher.submit(finish)
        return AttemptResult(
            job.job_id, job.type, job.attempt, status, getattr(finish, "error", None)
        )

    async def _promote(self, *, everything: bool) -> int:
        moved = 0
        for queue in self.queues:
            delayed = self.keys.queue(queue).delayed
            now = await self._redis_now_ms()
            if everything:
                ids: Any = await self.redis.zrange(delayed, 0, -1)
                if ids:
                    await self.redis.zadd(delayed, dict.fromkeys(ids, now), xx=True)
            while True:
                result = await self.scheduler.promote_due(queue, now, PROMOTE_BATCH)
                moved += result.promoted
                if result.next_due_ms is None or result.next_due_ms > now:
                    break
        return moved

    async def _redis_now_ms(self) -> int:
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    # -- lifecycle ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        await _cancel_and_wait(list(self.abandoned))
        if self._finishing is not None:
            await _cancel_and_wait([self._finishing])
            self._finishing = None
        self.executor.close()
        await self.client.aclose()

    async def __aenter__(self) -> Self:
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"ConveyorTest(handlers={self.registry.names()}, queues={self.queues})"


async def _cancel_and_wait(tasks: Sequence[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    """Cancel the tasks not done yet and wait until each has ended, cancelling again while
    one runs on: redis-py's calls go through `asyncio.wait_for`, which on Python 3.11
    swallows a cancellation that arrives just as the call it waits for completes.

    A task still running after ABANDON_AFTER_SECONDS ignores its cancellation (a handler
    that catches CancelledError): it is left running, as a worker leaves such a handler,
    and returned."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + ABANDON_AFTER_SECONDS
    pending = [task for task in tasks if not task.done()]
    while pending and loop.time() < give_up:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.1)
        pending = [task for task in pending if not task.done()]
    await asyncio.gather(*(task for task in tasks if task.done()), return_exceptions=True)
    return pending
