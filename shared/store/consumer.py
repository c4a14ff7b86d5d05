"""The worker side of the store: read deliveries, claim them, finish attempts, keep leases.

A worker is one consumer of the group ``workers`` on each of its queues' streams. The
stream entry of a job stays in the consumer's pending entries list (PEL) from delivery until
the script that finishes the attempt acknowledges it; that PEL entry is the job's lease.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from conveyor.redis_conn import is_cluster
from conveyor.redis_multiplex import MultiplexedRedis
from conveyor.store.keys import ENTRY_FIELD, GROUP, Keys, QueueKeys
from conveyor.store.registry import QueueRegistry
from conveyor.store.replies import Finished, finished
from conveyor.store.replies import words as reply_words
from conveyor.store.scripts import Call, run_pipelined, scripts

T = TypeVar("T")
# How long `read` leaves out a queue whose deliveries a claim handed back (it is paused):
# its entries would otherwise be read and handed back again at once, in a loop.
PAUSED_RECHECK_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """A stream entry delivered to this consumer; its job is not started yet."""

    queue: str
    entry_id: str
    job_id: str
    # Taken over with XAUTOCLAIM: a job found running under this consumer's own name is then
    # an attempt this worker lost track of (its outcome could not be recorded), not a claim
    # being sent again, and the claim script starts a new, fenced attempt for it.
    reclaimed: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class AttemptLimits:
    """What decides the effective max_attempts of a job that sets none: its handler's
    limit (`by_type`), else the worker's `default`. The claim script records the effective
    limit of each attempt it starts in the job hash (``effective_max_attempts``), in the same
    order the worker applies them (`conveyor.worker.retry.effective_max_attempts`)."""

    default: int
    by_type: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """An attempt this worker started; `token` fences every write that finishes it."""

    queue: str
    job_id: str
    entry_id: str
    token: str
    attempt: int
    type: str
    payload: bytes
    timeout_ms: int | None  # None: not set on the job
    correlation_id: str | None
    max_attempts: int | None  # None: not set on the job
    ready_at_ms: int  # when it became runnable (created, or due): for the wait metric
    started_at_ms: int = 0  # when this attempt was claimed; both by Redis's clock


@dataclass(slots=True)
class ClaimResult:
    run: list[ClaimedJob] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (job_id, status)
    poisoned: list[str] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)  # ended unrun: past their expires_at
    # The queue is paused: the entry went back to the stream, nothing was charged.
    handed_back: list[str] = field(default_factory=list)
    # Not started, nothing written: one more lost attempt would make the job poison, and
    # the caller asked to start such jobs only on their own (`defer_last_chance`).
    deferred: list[Delivery] = field(default_factory=list)
    # Not started, uncharged, entry acked (ADR 0017): held until a slot of this limit key
    # frees, or delayed by a rate limit to this start (epoch ms).
    held: list[tuple[str, str]] = field(default_factory=list)  # (job_id, limit key)
    limited: list[tuple[str, int]] = field(default_factory=list)  # (job_id, due_ms)


@dataclass(frozen=True, slots=True)
class Completion:
    job: ClaimedJob
    result: bytes


@dataclass(frozen=True, slots=True)
class Failure:
    job: ClaimedJob
    error: str
    outcome: str  # Outcome.FAILED | Outcome.TIMED_OUT | Outcome.CANCELED
    retryable: bool
    delay_ms: int
    max_attempts: int | None = None  # the effective limit; None: the job's own value


class ConsumerStore:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        consumer: str,
        *,
        max_deliveries: int,
        result_ttl_seconds: int,
        blocking_redis: Redis | MultiplexedRedis | None = None,
        attempt_limits: AttemptLimits | None = None,
        hot_redis: Redis | MultiplexedRedis | None = None,
        lease_ms: int = 30_000,
    ) -> None:
        """`attempt_limits`: what the claim records as each attempt's effective limit;
        None records none (the job hash keeps only the job's own max_attempts).
        `hot_redis`: the client of the per-job calls (claim, finish, renew), by default
        `redis`; the worker gives its multiplexed connection (shared/redis_multiplex.py).
        `lease_ms`: the worker's lease; a concurrency slot lasts as long without renewal."""
        self.redis = redis
        self.hot_redis = hot_redis or redis
        # XREADGROUP BLOCK holds its connection; a separate client keeps its longer
        # socket timeout away from every other call.
        self.blocking_redis = blocking_redis or redis
        self.keys = keys
        self.consumer = consumer
        self.max_deliveries = max_deliveries
        self.ttl_ms = result_ttl_seconds * 1000
        self._limit_args = _limit_args(attempt_limits)
        self.lease_ms = lease_ms
        self.scripts = scripts()
        self._autoclaim_cursor: dict[str, str] = {}
        # `fetch`: where each stream stood when the last fetch found nothing (None: it found
        # something, so the next one does not wait).
        # Per queue, by name: a weighted worker passes its queues in another order each
        # fetch (conveyor.queue_weights).
        self._wake_after: dict[str, str] | None = None
        self._reads: dict[str, asyncio.Task[list[Delivery]]] = {}  # Cluster: per queue
        # `read`: queue -> time.monotonic() until which it is not read: a claim handed its
        # deliveries back because it is paused (read_claim.lua checks the flag itself).
        self._paused_until: dict[str, float] = {}

    async def ensure_groups(self, queues: Iterable[str]) -> None:
        """Create each queue's stream and group (from the start of the stream) if missing.

        The queues are registered without the cap (an operator configured them); they
        count towards it, and leave the registry like any queue once they hold no job."""
        queues = list(queues)
        await QueueRegistry(self.redis, self.keys).register(queues, capped=False)
        for queue in queues:
            try:
                await self.redis.xgroup_create(
                    self.keys.queue(queue).stream, GROUP, id="0", mkstream=True
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read(self, queues: Sequence[str], count: int, block_ms: int) -> list[Delivery]:
        """New entries for this consumer, blocking up to `block_ms` when there are none.

        One XREADGROUP over every queue's stream; in Redis Cluster, whose queues live in
        different slots, one per queue (see `_read_per_queue`).
        """
        queues = self._unpaused(queues)
        if not queues:  # all paused: wait as a read would, then look again
            await asyncio.sleep(block_ms / 1000)
            return []
        if len(queues) > 1 and is_cluster(self.blocking_redis):
            return await self._read_per_queue(queues, count, block_ms)
        streams = {self.keys.queue(q).stream: q for q in queues}
        reply: Any = await self.blocking_redis.xreadgroup(
            GROUP, self.consumer, dict.fromkeys(streams, ">"), count=count, block=block_ms
        )
        out: list[Delivery] = []
        for stream, entries in reply or ():
            queue = streams[stream.decode() if isinstance(stream, bytes) else stream]
            out += _deliveries(queue, entries)
        return out

    def _unpaused(self, queues: Sequence[str]) -> list[str]:
        """`queues` without those a claim found paused in the last PAUSED_RECHECK_SECONDS."""
        now = time.monotonic()
        return [q for q in queues if self._paused_until.get(q, 0.0) <= now]

    @property
    def fetches_claimed(self) -> bool:
        """Whether `fetch` is available: reads and claims in one script (not in Redis
        Cluster, where each queue lives in its own slot)."""
        return not is_cluster(self.blocking_redis)

    async def fetch(
        self, queues: Sequence[str], count: int, block_ms: int
    ) -> tuple[ClaimResult, list[Delivery]]:
        """Read up to `count` new entries and start an attempt for each, in one script
        (read_claim.lua): returns the claim's result and the deliveries it was for.

        When the previous fetch found nothing, this one first waits (``XREAD BLOCK``, at
        most `block_ms`) for an entry newer than the newest its streams held then, and the
        script goes in the same round trip behind it: Redis runs it as soon as the wait
        ends, so a job enqueued to an idle worker is started after one round trip, not
        two. A fetch that finds nothing returns empty; the next one waits.

        A paused queue is not read (the script checks its flag) and not waited on: its
        waiting entries would wake the wait at once, again and again. When every queue is
        paused, the wait is a sleep of `block_ms` (no Redis call), so an idle worker on
        paused queues costs one script call per `block_ms`, and a resume is seen within it.
        """
        q_keys = [self.keys.queue(q) for q in queues]
        args: list[str | int] = [self.consumer, self.max_deliveries, self.ttl_ms, "1"]
        args += self._limit_args
        args += [self.lease_ms, count]
        args += [q.job("") for q in q_keys]
        keys = [k for q in q_keys for k in q.header()] + [q.paused for q in q_keys]
        first: list[list[str | int]] = []
        wake_after = self._wake_after
        if wake_after is not None and block_ms > 0:
            watched = [
                (q.stream, wake_after.get(name, "$"))
                for name, q in zip(queues, q_keys, strict=True)
            ]
            watched = [(stream, after) for stream, after in watched if after]  # '': paused
            if watched:
                streams, ids = [w[0] for w in watched], [w[1] for w in watched]
                first.append(["XREAD", "COUNT", 1, "BLOCK", block_ms, "STREAMS", *streams, *ids])
            else:  # every queue is paused
                await asyncio.sleep(block_ms / 1000)
        (reply,) = await run_pipelined(
            self.blocking_redis, [Call(self.scripts.read_claim, keys, args)], first=first
        )
        if isinstance(reply, Exception):
            raise reply
        result, delivered = ClaimResult(), []
        for queue, rows in zip(queues, reply, strict=False):
            for row in rows:
                _add_claim_row(result, queue, row)
                delivered.append(Delivery(queue, _text(row[2]), _text(row[1])))
        newest = reply[len(queues)]  # only when nothing was read
        self._wake_after = (
            {q: _text(i) for q, i in zip(queues, newest, strict=True)}
            if newest and not delivered
            else None
        )
        return result, delivered

    async def _read_per_queue(
        self, queues: Sequence[str], count: int, block_ms: int
    ) -> list[Delivery]:
        """Cluster reads: XREADGROUP cannot span slots, so each queue is read on its own.

        With no read in flight, every queue is read without blocking in one pipelined
        round trip (the Cluster pipeline asks the nodes in parallel), which answers as the
        single multi-stream read does whenever jobs wait. Only when none waits, a blocking
        read per queue is started, all in flight at once, and the call returns when any of
        them does. A read that has not returned yet is kept for the next call rather than
        cancelled: cancelling it could lose its reply after Redis delivered the entries
        (they would wait in the PEL for a reclaim). `drain_reads` collects the last ones
        at shutdown.
        """
        if not self._reads:
            cluster = cast(Redis, self.blocking_redis)  # a Cluster client is redis-py's
            async with cluster.pipeline(transaction=False) as pipe:
                for queue in queues:
                    stream = self.keys.queue(queue).stream
                    pipe.xreadgroup(GROUP, self.consumer, {stream: ">"}, count=count)
                replies = await pipe.execute()
            ready = [
                d
                for queue, reply in zip(queues, replies, strict=True)
                for _, entries in reply or ()
                for d in _deliveries(queue, entries)
            ]
            if ready or block_ms <= 0:
                return ready
        for queue in queues:
            if queue not in self._reads:
                self._reads[queue] = asyncio.create_task(
                    self.read([queue], count, block_ms), name=f"read-{queue}"
                )
        await asyncio.wait(self._reads.values(), return_when=asyncio.FIRST_COMPLETED)
        out: list[Delivery] = []
        error: BaseException | None = None
        for queue in queues:  # priority order
            task = self._reads.get(queue)
            if task is None or not task.done():
                continue
            del self._reads[queue]
            if task.cancelled():
                continue
            failure = task.exception()
            if failure is None:
                out += task.result()
            elif error is None:
                error = failure
        if error is not None and not out:
            raise error
        return out

    async def drain_reads(self) -> list[Delivery]:
        """What the reads still in flight deliver (they end within their block time)."""
        tasks = list(self._reads.values())
        self._reads.clear()
        replies = await asyncio.gather(*tasks, return_exceptions=True)
        return [d for reply in replies if isinstance(reply, list) for d in reply]

    async def autoclaim(self, queue: str, min_idle_ms: int, count: int) -> list[Delivery]:
        """Take over entries idle longer than the lease (their worker stopped renewing)."""
        stream = self.keys.queue(queue).stream
        start = self._autoclaim_cursor.get(queue, "0-0")
        reply: Any = await self.redis.xautoclaim(
            stream, GROUP, self.consumer, min_idle_ms, start_id=start, count=count
        )
        nxt, entries = reply[0], reply[1]
        self._autoclaim_cursor[queue] = nxt.decode() if isinstance(nxt, bytes) else str(nxt)
        return [replace(d, reclaimed=True) for d in _deliveries(queue, entries)]

    async def claim(
        self, deliveries: Sequence[Delivery], *, defer_last_chance: bool = False
    ) -> ClaimResult:
        """Start an attempt for each delivery (one script per queue, one round trip).

        With `defer_last_chance`, a job that has lost `max_deliveries - 1` attempts already
        (counting the takeover this delivery may be) is not started but returned in
        `deferred`, its entry still held: the caller means to start it later on its own
        (see worker/last_chance.py)."""
        by_queue = _group(deliveries, lambda d: d.queue)
        calls = []
        defer = "1" if defer_last_chance else "0"
        for queue, items in by_queue.items():
            q = self.keys.queue(queue)
            args: list[str | int] = [self.consumer, self.max_deliveries, self.ttl_ms, defer]
            args += self._limit_args
            args.append(self.lease_ms)
            for d in items:
                args += [d.entry_id, d.job_id, "1" if d.reclaimed else "0"]
            keys = [*q.header(), *(q.job(d.job_id) for d in items), q.paused]
            calls.append(Call(self.scripts.claim, keys, args))
        result = ClaimResult()
        replies = await run_pipelined(self.hot_redis, calls)
        for queue, reply in zip(by_queue, replies, strict=True):
            if isinstance(reply, Exception):
                raise reply
            for row in reply:
                _add_claim_row(result, queue, row)
                if row[0] == b"paused":  # read it again only after a while
                    self._paused_until[queue] = time.monotonic() + PAUSED_RECHECK_SECONDS
        if result.deferred:  # the rows name entries: hand back the deliveries themselves
            by_entry = {(d.queue, d.entry_id): d for d in deliveries}
            result.deferred = [by_entry[(d.queue, d.entry_id)] for d in result.deferred]
        return result

    async def finish(
        self,
        completions: Sequence[Completion] = (),
        failures: Sequence[Failure] = (),
        requeues: Sequence[ClaimedJob] = (),
        *,
        schedule_channel: str,
    ) -> dict[str, Finished]:
        """Record how attempts ended, all in one round trip. Returns job id -> new status
        ('stale' for an attempt this worker no longer owns: nothing was written for it)."""
        calls: list[Call] = []
        order: list[list[str]] = []
        for queue, items in _group(completions, lambda c: c.job.queue).items():
            q = self.keys.queue(queue)
            args: list[str | bytes | int] = [self.ttl_ms]
            for c in items:
                args += [c.job.job_id, c.job.entry_id, c.job.token, c.result]
            keys = [*q.header(), *_job_keys(q, items), q.throughput]
            calls.append(Call(self.scripts.complete, keys, args))
            order.append([c.job.job_id for c in items])
        for queue, fitems in _group(failures, lambda f: f.job.queue).items():
            q = self.keys.queue(queue)
            args = [self.ttl_ms, schedule_channel, queue]
            for f in fitems:
                j = f.job
                args += [j.job_id, j.entry_id, j.token, f.error, f.outcome]
                args += ["1" if f.retryable else "0", f.delay_ms]
                args.append("" if f.max_attempts is None else f.max_attempts)
            keys = [*q.header(), *_job_keys(q, fitems), q.throughput]
            calls.append(Call(self.scripts.fail, keys, args))
            order.append([f.job.job_id for f in fitems])
        for queue, ritems in _group(requeues, lambda j: j.queue).items():
            q = self.keys.queue(queue)
            args = [self.ttl_ms]
            for j in ritems:
                args += [j.job_id, j.entry_id, j.token]
            keys = q.header() + [q.job(j.job_id) for j in ritems]
            calls.append(Call(self.scripts.requeue, keys, args))
            order.append([j.job_id for j in ritems])
        outcome: dict[str, Finished] = {}
        for ids, reply in zip(order, await run_pipelined(self.hot_redis, calls), strict=True):
            outcome.update(zip(ids, finished(reply), strict=True))
        return outcome

    async def renew(self, held: Sequence[ClaimedJob | Delivery]) -> dict[str, str]:
        """Reset the idle time of held entries still owned by this consumer.
        Returns job id -> 'ok' | 'cancel' | 'lost'."""
        calls, order = [], []
        for queue, items in _group(held, lambda h: h.queue).items():
            q = self.keys.queue(queue)
            args: list[str | int] = [self.consumer, self.lease_ms]
            for h in items:
                args += [h.job_id, h.entry_id]
            calls.append(
                Call(self.scripts.renew, q.header() + [q.job(h.job_id) for h in items], args)
            )
            order.append([h.job_id for h in items])
        out: dict[str, str] = {}
        for ids, reply in zip(order, await run_pipelined(self.hot_redis, calls), strict=True):
            out.update(zip(ids, reply_words(reply), strict=True))
        return out

    async def release_idle_consumers(self, queue: str, idle_ms: int, keep: set[str]) -> list[str]:
        """Delete consumers idle longer than `idle_ms` that hold no entry (dead workers)."""
        stream = self.keys.queue(queue).stream
        released = []
        for info in await self.redis.xinfo_consumers(stream, GROUP):
            name = _text(info["name"])
            if name in keep or int(info["idle"]) < idle_ms or int(info["pending"]) > 0:
                continue
            if await self.scripts.release_consumer(self.redis, [stream], [name]) == 1:
                released.append(name)
        return released


def _limit_args(limits: AttemptLimits | None) -> list[str | int]:
    """claim.lua's default-limit and handler-limits arguments."""
    if limits is None:
        return ["", "{}"]
    return [limits.default, json.dumps(dict(limits.by_type), separators=(",", ":"))]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _deliveries(queue: str, entries: Any) -> list[Delivery]:
    out = []
    for entry_id, fields in entries:
        if not fields:  # deleted while pending (XREADGROUP of history, or XCLAIM)
            continue
        out.append(Delivery(queue, _text(entry_id), _text(fields[ENTRY_FIELD])))
    return out


def _add_claim_row(result: ClaimResult, queue: str, row: list[Any]) -> None:
    kind, job_id = row[0].decode(), row[1].decode()
    if kind == "run":
        result.run.append(
            ClaimedJob(
                queue=queue,
                job_id=job_id,
                entry_id=row[2].decode(),
                token=row[3].decode(),
                attempt=int(row[4]),
                type=row[5].decode(),
                payload=row[6],
                timeout_ms=int(row[7]) if row[7] else None,
                correlation_id=row[8].decode() or None,
                max_attempts=int(row[9]) if row[9] else None,
                ready_at_ms=int(row[10]),
                started_at_ms=int(row[11]),
            )
        )
    elif kind == "skip":
        result.skipped.append((job_id, row[3].decode()))
    elif kind == "poison":
        result.poisoned.append(job_id)
    elif kind == "defer":
        result.deferred.append(Delivery(queue, row[2].decode(), job_id))
    elif kind == "expired":
        result.expired.append(job_id)
    elif kind == "paused":
        result.handed_back.append(job_id)
    elif kind == "held":
        result.held.append((job_id, row[3].decode()))
    elif kind == "limited":
        result.limited.append((job_id, int(row[3])))
    else:
        result.canceled.append(job_id)


def _group(items: Iterable[T], key: Callable[[T], str]) -> dict[str, list[T]]:
    out: dict[str, list[T]] = {}
    for item in items:
        out.setdefault(key(item), []).append(item)
    return out


def _job_keys(q: QueueKeys, items: Sequence[Completion] | Sequence[Failure]) -> list[str]:
    return [q.job(i.job.job_id) for i in items]
