"""The producer side of the store: create, read, list and cancel jobs.

Used by the HTTP API, the Python client and the CLI. Every change goes through one Lua
transition script; reads are plain commands, pipelined.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis

from shared import codec
from shared.errors import DuplicateJob, InvalidTransition, JobNotFound
from shared.ids import job_id_bound
from shared.job import Job
from shared.states import Status
from shared.store.keys import Keys
from shared.store.scripts import Call, run_pipelined, scripts

ENQUEUE_CHUNK = 500  # jobs per enqueue script call: keeps each script well under 10 ms


@dataclass(frozen=True, slots=True)
class NewJob:
    """A validated job to create. `payload` is already msgpack-encoded."""

    id: str
    type: str
    queue: str
    payload: bytes
    max_attempts: int | None = None  # None: the handler's, else the worker's default
    timeout_ms: int | None = None  # None: the handler's, else the worker's default
    correlation_id: str | None = None
    due_ms: int | None = None  # absolute epoch ms; None or past = now


class CancelOutcome(StrEnum):
    CANCELED = "canceled"  # it was not running: canceled at once
    REQUESTED = "requested"  # it is running: its worker was asked to stop


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Job]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ListQuery:
    statuses: tuple[Status, ...] = ()
    queue: str | None = None
    type: str | None = None
    limit: int = 50
    cursor: str | None = None  # the id of the last job of the previous page
    created_after_ms: int | None = None
    created_before_ms: int | None = None


class ProducerStore:
    def __init__(self, redis: Redis, keys: Keys, *, result_ttl_seconds: int) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_ms = result_ttl_seconds * 1000
        self.scripts = scripts()

    # -- create ---------------------------------------------------------------------------

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Create jobs in one round trip. Atomic per queue: a queue's jobs are all created
        or none is (a script chunk holds at most ENQUEUE_CHUNK jobs)."""
        if not jobs:
            return []
        calls, groups = self._enqueue_calls(jobs)
        async with self.redis.pipeline(transaction=False) as pipe:
            # Registered before the jobs exist, so a listed job's queue is always known.
            pipe.sadd(self.keys.queues, *{j.queue for j in jobs})
            await pipe.execute()
        results = await run_pipelined(self.redis, calls)
        created: dict[str, Job] = {}
        for group, result in zip(groups, results, strict=True):
            if isinstance(result, Exception):
                raise result
            if result[0] == -1:
                raise DuplicateJob(group[int(result[1]) - 1].id)
            now = int(result[0])
            for job, status in zip(group, result[1:], strict=True):
                created[job.id] = _new_job(job, Status(status.decode()), now)
        return [created[j.id] for j in jobs]

    def _enqueue_calls(self, jobs: Sequence[NewJob]) -> tuple[list[Call], list[list[NewJob]]]:
        by_queue: dict[str, list[NewJob]] = {}
        for job in jobs:
            by_queue.setdefault(job.queue, []).append(job)
        calls: list[Call] = []
        groups: list[list[NewJob]] = []
        for queue, queued in by_queue.items():
            q = self.keys.queue(queue)
            for start in range(0, len(queued), ENQUEUE_CHUNK):
                chunk = queued[start : start + ENQUEUE_CHUNK]
                args: list[str | bytes | int] = [queue, self.keys.schedule_channel]
                for j in chunk:
                    args += [
                        j.id,
                        j.type,
                        j.payload,
                        "" if j.max_attempts is None else j.max_attempts,
                        "" if j.timeout_ms is None else j.timeout_ms,
                        j.correlation_id or "",
                        "" if j.due_ms is None else j.due_ms,
                    ]
                keys = q.header() + [q.job(j.id) for j in chunk]
                calls.append(Call(self.scripts.enqueue, keys, args))
                groups.append(chunk)
        return calls, groups

    # -- read -----------------------------------------------------------------------------

    async def queues(self) -> list[str]:
        names: Any = await self.redis.smembers(self.keys.queues)
        return sorted(n.decode() for n in names)

    async def get(self, job_id: str, queue: str | None = None) -> Job:
        """The job with this id; `JobNotFound` when no queue holds it.

        Without `queue`, every known queue is probed in one pipelined round trip (job ids
        carry no queue, and a global id->queue map could not be written atomically with
        the job in Redis Cluster; see docs/adr/0004-lookup-by-id.md).
        """
        candidates = [queue] if queue else await self.queues()
        async with self.redis.pipeline(transaction=False) as pipe:
            for q in candidates:
                pipe.hgetall(self.keys.queue(q).job(job_id))
            found = await pipe.execute()
        for raw in found:
            if raw:
                return Job.from_hash(raw)
        raise JobNotFound(job_id)

    async def list_jobs(self, query: ListQuery) -> Page:
        """Jobs newest first, filtered, one page after `query.cursor`.

        Each queue keeps lexically ordered id indexes (ids are ULIDs, so lexical order is
        creation order); pages are merged across queues by id. The cursor is the last id
        examined, so a page is stable under concurrent inserts: new jobs sort before it.
        """
        queues = [query.queue] if query.queue else await self.queues()
        statuses = set(query.statuses)
        upper, lower = _bounds(query)
        index_keys = self._index_keys(queues, query.statuses)
        items: list[Job] = []
        scanned_budget = max(query.limit * 20, 1000)
        batch = min(max(query.limit * 2, 20), 1000)
        while True:
            ids = await self._range(index_keys, upper, lower, batch)
            if not ids:
                return Page(items, None)
            jobs = await self._fetch(ids)
            for (job_id, _queue), job in zip(ids, jobs, strict=True):
                scanned_budget -= 1
                upper = f"({job_id}"
                if job is None or (statuses and job.status not in statuses):
                    continue
                if query.type and job.type != query.type:
                    continue
                items.append(job)
                if len(items) == query.limit:
                    return Page(items, job_id)
            if len(ids) < batch:
                return Page(items, None)
            if scanned_budget <= 0:
                return Page(items, upper[1:])

    def _index_keys(
        self, queues: Iterable[str], statuses: Sequence[Status]
    ) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for q in queues:
            qk = self.keys.queue(q)
            if statuses:
                out += [(qk.index(s), q) for s in statuses]
            else:
                out.append((qk.all_index, q))
        return out

    async def _range(
        self, index_keys: list[tuple[str, str]], upper: str, lower: str, count: int
    ) -> list[tuple[str, str]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, _ in index_keys:
                pipe.execute_command("ZRANGE", key, upper, lower, "BYLEX", "REV", "LIMIT", 0, count)
            results = await pipe.execute()
        streams = [
            [(m.decode(), q) for m in members]
            for (_, q), members in zip(index_keys, results, strict=True)
        ]
        merged = heapq.merge(*streams, key=lambda t: t[0], reverse=True)
        out: list[tuple[str, str]] = []
        for item in merged:
            if out and out[-1][0] == item[0]:
                continue  # the same id seen in two status indexes during a transition
            out.append(item)
            if len(out) == count:
                break
        return out

    async def _fetch(self, ids: list[tuple[str, str]]) -> list[Job | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id, q in ids:
                pipe.hgetall(self.keys.queue(q).job(job_id))
            raws = await pipe.execute()
        return [Job.from_hash(raw) if raw else None for raw in raws]

    # -- cancel ---------------------------------------------------------------------------

    async def cancel(self, job_id: str) -> tuple[CancelOutcome, Job]:
        """Cancel a job: `InvalidTransition` when it already ended, `JobNotFound` when unknown."""
        job = await self.get(job_id)
        q = self.keys.queue(job.queue)
        result = await self.scripts.cancel(
            self.redis,
            [*q.header(), q.job(job_id)],
            [job_id, self.ttl_ms, self.keys.cancel_channel],
        )
        word = result[0].decode()
        if word == "missing":
            raise JobNotFound(job_id)
        if word == "terminal":
            raise InvalidTransition(result[1].decode(), "cancel")
        return CancelOutcome(word), await self.get(job_id, job.queue)


def _bounds(query: ListQuery) -> tuple[str, str]:
    """ZRANGE BYLEX bounds (upper, lower) for the query's cursor and creation window."""
    upper, lower = "+", "-"
    if query.created_before_ms is not None:
        upper = f"[{job_id_bound(query.created_before_ms, upper=True)}"
    if query.cursor and (upper == "+" or query.cursor <= upper[1:]):
        upper = f"({query.cursor}"
    if query.created_after_ms is not None:
        lower = f"[{job_id_bound(query.created_after_ms, upper=False)}"
    return upper, lower


def _new_job(spec: NewJob, status: Status, now: int) -> Job:
    return Job(
        id=spec.id,
        type=spec.type,
        queue=spec.queue,
        status=status,
        payload=codec.decode(spec.payload),
        attempts=0,
        max_attempts=spec.max_attempts,
        timeout_seconds=None if spec.timeout_ms is None else spec.timeout_ms / 1000,
        correlation_id=spec.correlation_id,
        created_at=now,
        updated_at=now,
        run_at=spec.due_ms if status is Status.SCHEDULED else None,
    )
