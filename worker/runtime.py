"""The worker process: components wired together, and graceful shutdown.

Components, each one asyncio task:
- fetch loop: read and claim up to the free slots in one script (read_claim.lua; when idle,
  behind a blocking XREAD in the same round trip, ADR 9) -> one task per job;
- finisher: writes completions and failures in batches;
- lease keeper: renews held entries, stops jobs whose lease was lost or that were canceled;
- reclaimer: takes over entries of dead workers (XAUTOCLAIM);
- cancel listener: pub/sub fast path for cancel requests;
- heartbeat: advertises this worker in Redis (worker.heartbeat);
- reaper: abandons attempts whose handler ignored its timeout (worker.hung_handlers).

How jobs ended is counted, logged and measured in one place (worker.outcomes).

Shutdown (SIGTERM/SIGINT): stop reading; give running jobs `shutdown_timeout_seconds` to
finish; stop the rest and hand them back to the queue (new stream entry, attempt not
charged); close connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Coroutine
from typing import Any

from redis.asyncio import Redis

from conveyor.config import Settings
from conveyor.logs import log_context
from conveyor.metrics import JobSeries, WorkerMetrics, process_registry
from conveyor.queue_weights import WeightedOrder
from conveyor.redis_conn import connect
from conveyor.redis_errors import STORE_ERRORS
from conveyor.redis_multiplex import MultiplexedRedis, connect_multiplexed
from conveyor.store.concurrency import ConcurrencyStore
from conveyor.store.consumer import ClaimedJob, ClaimResult, ConsumerStore, Delivery
from conveyor.store.keys import Keys
from conveyor.store.workers import WorkerRegistry
from conveyor.worker.cancels import CancelListener
from conveyor.worker.context import JobContext
from conveyor.worker.executor import Attempt, ExecutionDefaults, Executor, StopReason
from conveyor.worker.finisher import Finisher
from conveyor.worker.heartbeat import Heartbeat
from conveyor.worker.hung_handlers import HungHandlerReaper
from conveyor.worker.last_chance import LastChance
from conveyor.worker.lease import LeaseKeeper, Reclaimer
from conveyor.worker.outcomes import Outcomes
from conveyor.worker.probes import Health, ready_window
from conveyor.worker.registry import Registry
from conveyor.worker.resize import ConcurrencyWatcher
from conveyor.worker.retry import attempt_limits

log = logging.getLogger("conveyor.worker")

BLOCK_MS = 1000  # longest a read waits; bounds how long a stop request goes unnoticed


async def _cancel_and_wait(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel `tasks` and wait until every one has ended.

    A cancellation can be lost: on Python 3.11, `asyncio.wait_for` (which redis-py uses to
    send commands) swallows one that arrives just as the call it waits for completes. A
    loop that lost it would run on forever, so cancel again until all tasks are done.
    """
    pending = [t for t in tasks if not t.done()]
    while pending:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.1)
        pending = [t for t in pending if not t.done()]
    await asyncio.gather(*tasks, return_exceptions=True)


def new_worker_id() -> str:
    host = socket.gethostname().split(".")[0][:40] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        worker_id: str | None = None,
        redis: Redis | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.id = worker_id or new_worker_id()
        self.keys = Keys(settings.key_prefix)
        self.queues = list(settings.queues)
        # The order each fetch reads the queues in: by weight, or the configured one.
        self.queue_order = WeightedOrder(self.queues, settings.queue_weights)
        self.concurrency = settings.concurrency
        self.redis = redis or connect(settings)
        self._own_redis = redis is None
        # The per-job calls and the blocking read go over multiplexed connections where the
        # URL allows (conveyor.redis_multiplex, ADR 0009); a given client is used as it is.
        self.hot_redis: Redis | MultiplexedRedis = (
            (connect_multiplexed(settings) or self.redis) if redis is None else redis
        )
        self.blocking_redis: Redis | MultiplexedRedis = connect_multiplexed(
            settings, blocking_read_seconds=BLOCK_MS / 1000
        ) or connect(settings, blocking_read_seconds=BLOCK_MS / 1000)
        self.store = ConsumerStore(
            self.redis,
            self.keys,
            self.id,
            max_deliveries=settings.max_deliveries,
            result_ttl_seconds=settings.result_ttl_seconds,
            blocking_redis=self.blocking_redis,
            attempt_limits=attempt_limits(registry, settings.max_attempts),
            hot_redis=self.hot_redis,
            lease_ms=int(settings.lease_seconds * 1000),
        )
        self.executor = Executor(
            registry,
            ExecutionDefaults(
                settings.max_attempts,
                settings.job_timeout_seconds,
                settings.retry_policy,
                max_result_bytes=settings.max_payload_bytes,
            ),
            # Threads start as jobs need them: a pool sized for the most this worker may be
            # resized to costs nothing until then (worker/resize.py).
            threads=settings.max_concurrency,
        )
        self.finisher = Finisher(
            self.store, self.keys.schedule_channel, give_up_after=settings.lease_seconds
        )
        self.attempts: dict[str, Attempt] = {}
        self.backlog: list[Delivery] = []  # delivered or reclaimed, not started yet
        self.last_chance = LastChance()  # jobs one lost attempt away from poison run alone
        self._recording = 0  # attempts whose handler has ended, outcome not written yet
        self._stopping = asyncio.Event()
        self._force = asyncio.Event()
        self._slot_free = asyncio.Event()
        self.lease = LeaseKeeper(
            self.store,
            self.attempts,
            self.backlog,
            interval=max(settings.lease_seconds / 3, 0.1),
            deferred=self.last_chance.deferred,
        )
        self.reclaimer = Reclaimer(
            self.store,
            self.queues,
            int(settings.lease_seconds * 1000),
            self.backlog,
            limit=settings.concurrency,
            interval=max(min(settings.lease_seconds / 2, 5.0), 0.1),
            wake=self._slot_free.set,
        )
        self.abandoned: set[asyncio.Task[Any]] = set()  # handlers left running (reaper)
        self._background: list[asyncio.Task[Any]] = []
        self._reclaiming: asyncio.Task[Any] | None = None
        self.metrics = metrics or WorkerMetrics(
            process_registry(),
            max_types=settings.metrics_max_types,
            max_queues=settings.max_queues,
        )
        self.metrics.concurrency.set(self.concurrency)
        self.metrics.in_flight.set_function(lambda: self.in_flight)
        self.health = Health(ready_window(settings))
        self.outcomes = Outcomes(self.metrics, self.redis, self.keys)
        self.heartbeat = Heartbeat(
            WorkerRegistry(self.redis, self.keys),
            self.id,
            queues=self.queues,
            concurrency=self.concurrency,
            in_flight=lambda: self.in_flight,
            outcomes=self.outcomes,
            interval_seconds=settings.heartbeat_seconds,
            health=self.health,
        )
        self.reaper = HungHandlerReaper(
            self.attempts,
            self.abandoned,
            executor=self.executor,
            finisher=self.finisher,
            last_chance=self.last_chance,
            outcomes=self.outcomes,
            metrics=self.metrics,
            slot_freed=self._slot_free.set,
        )
        self.resizer = ConcurrencyWatcher(
            ConcurrencyStore(self.redis, self.keys),
            self.id,
            self.queues,
            configured=settings.concurrency,
            maximum=settings.max_concurrency,
            current=lambda: self.concurrency,
            apply=self.resize,
        )

    # -- control ---------------------------------------------------------------------------

    def request_stop(self) -> None:
        """First call: graceful shutdown. Second call: skip the grace period."""
        if self._stopping.is_set():
            self._force.set()
        self._stopping.set()
        self._slot_free.set()

    async def resize(self, concurrency: int) -> None:
        """Run up to `concurrency` jobs at once from now on: more start at once when it
        grew; when it shrank, none starts until fewer run (running jobs are left alone).
        The heartbeat shows it at once."""
        log.info(
            "concurrency changed",
            extra={"worker": self.id, "from": self.concurrency, "to": concurrency},
        )
        self.concurrency = concurrency
        self.heartbeat.concurrency = concurrency
        self.reclaimer.limit = concurrency
        self.metrics.concurrency.set(concurrency)
        self._slot_free.set()
        with contextlib.suppress(*STORE_ERRORS):
            await self.heartbeat.beat()

    def free_slots(self) -> int:
        """How many more jobs may start now.

        An attempt whose handler has ended no longer takes a slot while the finisher writes
        its outcome (the next jobs start during that round trip instead of after it), but
        at most `concurrency` outcomes wait for Redis at a time, so a slow Redis cannot
        pile them up."""
        if self._stopping.is_set() or self.last_chance.active:
            return 0
        return min(self.concurrency - self.in_flight, 2 * self.concurrency - len(self.attempts))

    @property
    def in_flight(self) -> int:
        """Attempts whose handler runs (or waits to start): at most `concurrency`."""
        return len(self.attempts) - self._recording

    async def run(self) -> None:
        await self._prepare()
        log.info(
            "worker started",
            extra={"worker": self.id, "queues": self.queues, "concurrency": self.concurrency},
        )
        finisher_task = asyncio.create_task(self.finisher.run(), name="finisher")
        self._reclaiming = self._spawn(self.reclaimer.run(), "reclaimer")
        self._background = [
            self._spawn(self.lease.run(), "lease"),
            self._reclaiming,
            self._spawn(
                CancelListener(self.redis, self.keys.cancel_channel, self.attempts).run(),
                "cancels",
            ),
            self._spawn(self.heartbeat.run(), "heartbeat"),
            self._spawn(self.reaper.run(), "reaper"),
            self._spawn(self.resizer.run(), "resizer"),
        ]
        try:
            await self._fetch_loop()
        finally:
            await self._shutdown(finisher_task)

    # -- fetching --------------------------------------------------------------------------

    async def _prepare(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            try:
                await self.store.ensure_groups(self.queues)
                await self.heartbeat.beat()
                return
            except STORE_ERRORS as exc:
                self.health.redis_failed()
                log.warning("waiting for redis", extra={"error": str(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _fetch_loop(self) -> None:
        delay = 0.05
        while not self._stopping.is_set():
            alone = self.last_chance.next_up(self.attempts)
            free = self.free_slots()
            if free <= 0 and alone is None:
                self._slot_free.clear()
                nothing_to_do = self.free_slots() <= 0 and not self.last_chance.next_up(
                    self.attempts
                )
                if nothing_to_do and not self._stopping.is_set():
                    await self._slot_free.wait()
                continue
            deliveries: list[Delivery] = []  # read, to be claimed below
            try:
                if alone is not None:
                    await self._start([alone], alone=True)
                elif self.backlog:
                    deliveries = self.backlog[:free]
                    del self.backlog[:free]
                elif self.store.fetches_claimed:  # read and claimed in one round trip
                    claimed, fetched = await self.store.fetch(
                        self.queue_order.next(), count=free, block_ms=BLOCK_MS
                    )
                    self.health.redis_succeeded()
                    if fetched:
                        await self._launch_claimed(claimed, fetched)
                        await asyncio.sleep(0)  # as below
                else:  # Redis Cluster: read, then claim
                    got = await self.store.read(
                        self.queue_order.next(), count=free, block_ms=BLOCK_MS
                    )
                    self.health.redis_succeeded()
                    deliveries, extra = got[:free], got[free:]
                    self.backlog.extend(extra)  # several queues may each return `free`
                if deliveries:
                    await self._start(deliveries)
                    # Let the jobs just launched take their first step (most handlers start,
                    # many finish) before this loop spends CPU on sending the next read.
                    await asyncio.sleep(0)
                delay = 0.05
            except STORE_ERRORS as exc:
                self.health.redis_failed()
                log.warning("reading jobs failed; retrying", extra={"error": str(exc)})
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)
                if "NOGROUP" in str(exc):
                    await self.store.ensure_groups(self.queues)

    async def _start(self, deliveries: list[Delivery], *, alone: bool = False) -> None:
        """Claim `deliveries` and launch what may run. `alone`: one deferred delivery,
        claimed now that nothing else runs here (worker.last_chance)."""
        # Reclaiming (XAUTOCLAIM) an attempt that still runs here only reset its idle time,
        # as a renewal would: claiming it would start a second attempt of the same job.
        deliveries = [d for d in deliveries if not (d.reclaimed and d.job_id in self.attempts)]
        if not deliveries:
            return
        result = await self.store.claim(deliveries, defer_last_chance=not alone)
        await self._launch_claimed(result, deliveries, alone=alone)

    async def _launch_claimed(
        self, result: ClaimResult, deliveries: list[Delivery], *, alone: bool = False
    ) -> None:
        """Launch the attempts a claim started; report the deliveries it did not start."""
        self.last_chance.defer(result.deferred)
        await self._report_unstarted(result, deliveries)
        reclaimed = self.reclaimer.entries
        launched: Attempt | None = None
        for job in result.run:
            if job.job_id not in self.attempts:  # a repeated claim of a job we run already
                if job.entry_id in reclaimed:
                    self.metrics.reclaimed.inc()
                launched = self._launch(job)
        if alone:
            self.last_chance.claimed(deliveries[0], launched)
            if launched is not None:
                self.metrics.run_alone.inc()
                log.warning(
                    "job runs alone: one more lost attempt would make it poison",
                    extra=launched.log_fields(),
                )
        if reclaimed:  # forget the started ones, and the ones dropped when a lease was lost
            reclaimed.intersection_update(d.entry_id for d in self.backlog)

    async def _report_unstarted(self, result: ClaimResult, deliveries: list[Delivery]) -> None:
        """Log (and count) the deliveries a claim did not start."""
        if result.deferred:
            log.warning(
                "jobs one lost attempt away from poison will run alone",
                extra={"job_ids": [d.job_id for d in result.deferred]},
            )
        for job_id, status in result.skipped:
            log.debug("skipped a delivery", extra={"job_id": job_id, "status": status})
        for job_id in result.poisoned:
            log.error(
                "job failed as poison: too many of its attempts were lost with their worker",
                extra={"job_id": job_id, "max_deliveries": self.settings.max_deliveries},
            )
        for job_id in result.canceled:
            log.info("job canceled while its worker was gone", extra={"job_id": job_id})
        queue_of = {d.job_id: d.queue for d in deliveries}
        for job_id in result.expired:
            log.info("job expired before it started", extra={"job_id": job_id})
            self.metrics.expired.labels(queue_of[job_id]).inc()
        for job_id in result.handed_back:
            log.debug("queue paused: delivery handed back", extra={"job_id": job_id})
            self.metrics.handed_back.labels(queue_of[job_id]).inc()
        for job_id, limit_key in result.held:
            log.debug("job held by a concurrency limit", extra={"job_id": job_id, "key": limit_key})
        for job_id, due_ms in result.limited:
            log.debug("job delayed by a rate limit", extra={"job_id": job_id, "due_ms": due_ms})
        if result.held:
            self.metrics.held_back.inc(len(result.held))
        if result.limited:
            self.metrics.rate_limited.inc(len(result.limited))
        if result.poisoned or result.canceled:
            await self.outcomes.account_unrun(deliveries, result.poisoned, result.canceled)

    def _launch(self, job: ClaimedJob) -> Attempt:
        series = self.metrics.job(job.queue, job.type)
        # Both ends by Redis's clock: a worker with a skewed clock reports true waits.
        series.wait.observe(max(0, job.started_at_ms - job.ready_at_ms) / 1000)
        _, max_attempts, _ = self.executor.limits(job)
        ctx = JobContext(
            job_id=job.job_id,
            type=job.type,
            queue=job.queue,
            attempt=job.attempt,
            max_attempts=max_attempts,
            correlation_id=job.correlation_id,
            worker_id=self.id,
        )
        attempt = Attempt(job, ctx)
        self.attempts[job.job_id] = attempt
        attempt.task = asyncio.create_task(
            self._run_attempt(attempt, series), name=f"job-{job.job_id}"
        )
        return attempt

    async def _run_attempt(self, attempt: Attempt, series: JobSeries) -> None:
        job = attempt.job
        fields = attempt.log_fields()
        with log_context(**fields):
            try:
                log.debug("job started")
                finish = await self.executor.execute(attempt)
                attempt.deadline = None  # its handler is done: nothing for the reaper
                if finish is None or attempt.abandoned:  # nothing to write, or written
                    return
                ran = time.monotonic() - attempt.started
                self._recording += 1
                self._slot_free.set()
                try:
                    # Shielded: a stop request must not interrupt recording the outcome.
                    status = await asyncio.shield(self.finisher.put(finish))
                finally:
                    self._recording -= 1
                self.outcomes.account(status, ran, getattr(finish, "error", None), series)
            except Exception:
                log.exception("job attempt crashed the worker's runner")
            finally:
                if self.attempts.get(job.job_id) is attempt:
                    del self.attempts[job.job_id]
                self.last_chance.ended(attempt)
                self._slot_free.set()

    # -- shutdown --------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        return asyncio.create_task(coro, name=name)

    async def _shutdown(self, finisher_task: asyncio.Task[None]) -> None:
        # A stopping worker takes over nobody's jobs, its own stopped attempts included
        # (their leases are no longer renewed: they are for another worker to take).
        if self._reclaiming is not None:
            await _cancel_and_wait([self._reclaiming])
        running = [a.task for a in self.attempts.values() if a.task is not None]
        if running:
            log.info("shutting down: waiting for running jobs", extra={"jobs": len(running)})
            grace = asyncio.ensure_future(asyncio.wait(running))
            force = asyncio.ensure_future(self._force.wait())
            await asyncio.wait(
                [grace, force],
                timeout=self.settings.shutdown_timeout_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            force.cancel()
            grace.cancel()
        leftover = [a for a in self.attempts.values() if a.task and not a.task.done()]
        for attempt in leftover:
            attempt.stop(StopReason.SHUTDOWN)
        if leftover:
            log.info("returning unfinished jobs to the queue", extra={"jobs": len(leftover)})
            await asyncio.wait([a.task for a in leftover if a.task is not None], timeout=10)
        # Reads still in flight (Redis Cluster reads each queue on its own): hand back too.
        self.backlog.extend(await self.store.drain_reads())
        self.backlog.extend(self.last_chance.deferred)  # waiting to run alone: hand back too
        self.last_chance.deferred.clear()
        await self._return_backlog()
        await _cancel_and_wait(self._background)
        await self.finisher.drain()
        await _cancel_and_wait([finisher_task])
        await self.heartbeat.remove()
        self.executor.close()
        await self.blocking_redis.aclose()
        if self.hot_redis is not self.redis:
            await self.hot_redis.aclose()
        if self._own_redis:
            await self.redis.aclose()
        log.info("worker stopped", extra={"worker": self.id, "processed": self.outcomes.processed})

    async def _return_backlog(self) -> None:
        """Deliveries read but never started: claim them and hand them straight back."""
        if not self.backlog:
            return
        try:
            claimed = await self.store.claim(self.backlog)
            await self.store.finish(
                requeues=claimed.run, schedule_channel=self.keys.schedule_channel
            )
            self.metrics.returned.inc(len(claimed.run))
        except STORE_ERRORS as exc:
            log.warning(
                "could not return unstarted jobs; they will be reclaimed", extra={"error": str(exc)}
            )
        self.backlog.clear()
        self.reclaimer.entries.clear()
