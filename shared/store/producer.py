"""The producer side of the store: create, read, list and cancel jobs.

Used by the HTTP API, the Python client and the CLI. Every change goes through one Lua
transition script; reads are plain commands, pipelined.
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from conveyor import codec
from conveyor.errors import IdempotencyConflict, JobNotFound, NotReplicated
from conveyor.ids import job_id_bound
from conveyor.job import BULKY_FIELDS, LIGHT_FIELDS, Job
from conveyor.redis_multiplex import MultiplexedRedis
from conveyor.states import Status
from conveyor.store import bulk, id_index, replies
from conveyor.store.keys import Keys, unique_field, unique_holder
from conveyor.store.registry import QueueRegistry
from conveyor.store.scripts import Arg, Call, run_pipelined, run_replicated, scripts
from conveyor.values import NOT_KEPT, CancelOutcome, Created, ListQuery, NewJob, Page

ENQUEUE_CHUNK = 500  # jobs per enqueue script call: keeps each script well under 10 ms
# Rounds of "read the idempotency keys, run the scripts" before giving up: a chunk needs
# another round only when one of its keys changed between the read and its script.
IDEMPOTENCY_ROUNDS = 10


@dataclass(frozen=True, slots=True)
class _Chunk:
    """The jobs of one enqueue script call (one queue), with their positions in the call."""

    queue: str
    positions: list[int]
    jobs: list[NewJob]

    def idempotency_keys(self) -> list[str]:
        """The distinct idempotency keys of the chunk, in first-use order."""
        return list(dict.fromkeys(j.idempotency_key for j in self.jobs if j.idempotency_key))

    def unique_keys(self) -> list[str]:
        """The distinct unique keys of the chunk, in first-use order."""
        return list(dict.fromkeys(j.unique_key for j in self.jobs if j.unique_key))


# What one field costs in a listing beyond its stored value (its name, quotes, separators).
FIELD_OVERHEAD = 24


class Budget:
    """The bytes a listing page may still take (None: no cap). `take` answers whether an
    item of `size` fits, counting it when it does; the page's first item always fits, so
    a page always makes progress."""

    def __init__(self, limit: int | None) -> None:
        self.left = limit

    def take(self, size: int, *, first: bool = False) -> bool:
        if self.left is None:
            return True
        if size > self.left and not first:
            return False
        self.left -= size
        return True


# Most payload bytes a create sends over the shared multiplexed connection: a call's writes
# and replies queue in order there, so a large one would hold up the small creates behind
# it. Larger creates go over a connection of redis-py's pool, on their own.
MULTIPLEXED_MAX_BYTES = 64 * 1024


class ProducerStore:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        result_ttl_seconds: int,
        idempotency_ttl_seconds: int = 86_400,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 500,
        max_queues: int | None = None,
        hot_redis: MultiplexedRedis | None = None,
    ) -> None:
        """`max_queues`: the registry's cap for creates (None: none; the API, client and
        CLI pass `Settings.max_queues`). `hot_redis`: a multiplexed connection for the
        enqueue scripts' round trip (shared/redis_multiplex.py, ADR 9); not used with
        `wait_replicas`, whose WAIT would hold every other call on that connection."""
        self.redis = redis
        self.hot_redis = None if wait_replicas else hot_redis
        self.keys = keys
        self.ttl_ms = result_ttl_seconds * 1000
        self.idempotency_ttl_ms = idempotency_ttl_seconds * 1000
        self.scripts = scripts()
        self.registry = QueueRegistry(redis, keys, max_queues=max_queues)
        # With replicas to wait for, every enqueue round trip ends with WAIT (see create).
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms

    # -- create ---------------------------------------------------------------------------

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Create jobs; the jobs of `create`, in the caller's order."""
        return [c.job for c in await self.create(jobs)]

    async def create(self, jobs: Sequence[NewJob]) -> list[Created]:
        """Create jobs, honouring idempotency keys; results in the caller's order.

        Atomic per script chunk (one queue, at most ENQUEUE_CHUNK jobs): a chunk's jobs and
        idempotency keys are all written or none is.

        A job with an `idempotency_key` whose key (per queue, kept for the idempotency ttl)
        names a job created with the same fingerprint is not created: its result is that
        job (`created` False). The same key with another fingerprint raises
        `IdempotencyConflict`. Jobs of one call sharing a key and fingerprint become one job.
        A job whose id already exists (this call sent again) is reported as stored, with
        `created` True.

        Before any script runs, every chunk's keys are read in one pipelined round trip, so
        a conflict already visible then (or between jobs of the call) raises with nothing
        written in any queue. Each chunk's script checks its keys again, atomically. What
        remains: a key used by someone else with another fingerprint after that first read
        makes its chunk refuse with `IdempotencyConflict`, while chunks of other queues (or
        earlier chunks of the same queue) may already have been written; the jobs of such
        a chunk are then not created. A chunk whose key changed since the read without a
        conflict is simply read and run again.

        A job with a `unique_key` whose key (per queue) is held by a job that is not
        finished, or finished less than its `unique_for_ms` ago, is not created either: its
        result is the holder (`created` False), whatever the two requests asked. With an
        idempotency key as well, the idempotency key is looked at first (a repeat answers
        the job it names, another fingerprint raises); when it is unused, the unique key
        decides, and the idempotency key then names the job answered, created or held.

        The call's queues are registered first, all or none (`QueueRegistry.register`):
        when its new queues would take the registry past `max_queues`, `QueueLimitReached`
        is raised with nothing written. A chunk whose queue was found empty and retired
        meanwhile is refused by its script; its queue is registered again (capped) and the
        chunk sent again.

        With `wait_replicas`, the scripts' round trip ends with ``WAIT``; when fewer
        replicas confirmed the writes in time, `NotReplicated` names the jobs (they exist
        on the primary, but a failover now could lose them).
        """
        if not jobs:
            return []
        if len(jobs) == 1 and self._single_fast(jobs[0]):
            async with self._index_cleanup(jobs):
                created = await self._create_single(jobs[0])
            if created is not None:
                return created
        chunks = self._chunks(jobs)
        holders: dict[tuple[str, str], tuple[str, str] | None] = {}
        if any(c.idempotency_keys() for c in chunks):
            async with self.redis.pipeline(transaction=False) as pipe:
                holders = await self._read_idempotency_keys(pipe, chunks)
            await self._refuse_known_conflicts(chunks, holders)
        uniques = await self._read_unique_keys(chunks)
        # Queues are registered before their jobs exist (so a listed job's queue is always
        # known), all of the call's or none: beyond the cap nothing is written. Not before
        # the keys' read: a call refused by a known conflict leaves nothing behind.
        gens = await self.registry.register([c.queue for c in chunks])
        async with self._index_cleanup(jobs):
            return await self._create_registered(jobs, chunks, holders, uniques, gens)

    @contextlib.asynccontextmanager
    async def _index_cleanup(self, jobs: Sequence[NewJob]) -> AsyncIterator[None]:
        """On an error, the id index entries of those of `jobs` that do not exist are
        removed: some of the jobs may not have been created, their entries must not stay."""
        try:
            yield
        except Exception:
            with contextlib.suppress(RedisError, OSError):
                await id_index.remove_missing(
                    self.redis, self.keys, [(j.id, j.queue) for j in jobs]
                )
            raise

    def _single_fast(self, job: NewJob) -> bool:
        """Whether one job may take `_create_single`: no idempotency key, no replicas to
        wait for, a payload the multiplexed connection takes."""
        return (
            self.hot_redis is not None
            and not self.wait_replicas
            and not job.idempotency_key
            and not job.unique_key
            and len(job.payload) <= MULTIPLEXED_MAX_BYTES
        )

    async def _create_single(self, job: NewJob) -> list[Created] | None:
        """The most common create, one job (see `_single_fast`), in one write on the
        multiplexed connection: the id index entry and the enqueue script, nothing else.

        Only the plain answer is handled here, the job created now. Anything else — an
        error of either command (NOSCRIPT after a restart, a tampered key), a retired queue
        registration, an id that exists — returns None with at most the same writes the
        general path makes first (the id index entry, or the job itself): the caller then
        takes the general path, which sends the same call again and answers it fully (an
        existing id is a resend: it is read back, not created twice)."""
        assert self.hot_redis is not None
        gen = (await self.registry.register([job.queue]))[job.queue]
        call = self._enqueue_call(_Chunk(job.queue, [0], [job]), {}, gen)
        index = id_index.add_commands(self.keys, [(job.id, job.queue)])[0]
        evalsha = ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
        added, reply = await self.hot_redis.execute_many([index, evalsha])
        if isinstance(added, Exception) or isinstance(reply, Exception):
            return None
        if replies.enqueue_retired(reply):
            return None
        read = replies.enqueue_rows(reply, [job])
        if read is None:  # pragma: no cover - only a call with idempotency keys
            return None
        now, [(word, value)] = read
        if word != "created":
            return None
        return [Created(_new_job(job, Status(value), now), True)]

    async def _create_registered(
        self,
        jobs: Sequence[NewJob],
        chunks: list[_Chunk],
        holders: dict[tuple[str, str], tuple[str, str] | None],
        uniques: dict[tuple[str, str], str | None],
        gens: dict[str, int],
    ) -> list[Created]:
        """`create` once the queues are registered: the id index entries go first (in the
        scripts' round trip, ahead of them), then the scripts, in rounds."""
        first = id_index.add_commands(self.keys, [(j.id, j.queue) for j in jobs])
        large = sum(len(j.payload) for j in jobs) > MULTIPLEXED_MAX_BYTES
        results: dict[int, tuple[str, str | Job]] = {}
        acked: list[int] = []
        todo = chunks
        for _ in range(IDEMPOTENCY_ROUNDS):
            calls = [self._enqueue_call(c, holders, gens[c.queue], uniques) for c in todo]
            answers = await self._send(calls, acked, first, large=large)
            first = []
            again: list[_Chunk] = []
            retired: dict[str, int] = {}
            for chunk, reply in zip(todo, answers, strict=True):
                if replies.enqueue_retired(reply):
                    retired[chunk.queue] = gens[chunk.queue]
                    again.append(chunk)
                elif not self._chunk_done(chunk, reply, results):
                    again.append(chunk)
            if not again:
                created = await self._results(jobs, results)
                repeats = [
                    (j.id, j.queue)
                    for i, j in enumerate(jobs)
                    if results[i][0] in ("repeat", "unique")
                ]
                await id_index.remove_missing(self.redis, self.keys, repeats)
                return self._replicated(created, acked)
            if retired:
                gens.update(await self._register_again(retired))
            async with self.redis.pipeline(transaction=False) as pipe:
                holders.update(await self._read_idempotency_keys(pipe, again))
            uniques.update(await self._read_unique_keys(again))
            todo = again
        raise RuntimeError("idempotency keys kept changing while jobs were being created")

    async def _send(
        self,
        calls: Sequence[Call],
        acked: list[int],
        first: Sequence[Sequence[Arg]],
        *,
        large: bool,
    ) -> list[Any]:
        """The enqueue scripts' replies. With `wait_replicas`, WAIT ends the same round trip
        (on the connection that wrote) and its count is appended to `acked`. `large`: over
        `MULTIPLEXED_MAX_BYTES` of payload, kept off the multiplexed connection."""
        if not self.wait_replicas:
            client = self.redis if large or self.hot_redis is None else self.hot_redis
            return await run_pipelined(client, calls, first=first)
        answers, count = await run_replicated(
            self.redis,
            calls,
            replicas=self.wait_replicas,
            timeout_ms=self.wait_timeout_ms,
            first=first,
        )
        acked.append(count)
        return answers

    async def _register_again(self, retired: dict[str, int]) -> dict[str, int]:
        """New generations for queues whose registration was retired (found empty) while
        this call ran: the retirement is completed (the name removed if it still holds the
        old generation), then the names registered again, capped like any new queue."""
        for queue, gen in retired.items():
            self.registry.forget(queue)
            await self.registry.unregister(queue, gen)
        return await self.registry.register(list(retired))

    def _replicated(self, created: list[Created], acked: list[int]) -> list[Created]:
        if acked and min(acked) < self.wait_replicas:
            raise NotReplicated([c.job.id for c in created], min(acked), self.wait_replicas)
        return created

    def _chunks(self, jobs: Sequence[NewJob]) -> list[_Chunk]:
        by_queue: dict[str, list[int]] = {}
        for i, job in enumerate(jobs):
            by_queue.setdefault(job.queue, []).append(i)
        chunks: list[_Chunk] = []
        for queue, positions in by_queue.items():
            for start in range(0, len(positions), ENQUEUE_CHUNK):
                part = positions[start : start + ENQUEUE_CHUNK]
                chunks.append(_Chunk(queue, part, [jobs[i] for i in part]))
        return chunks

    async def _read_idempotency_keys(
        self, pipe: Any, chunks: Sequence[_Chunk]
    ) -> dict[tuple[str, str], tuple[str, str] | None]:
        """Adds a GET of each chunk's keys to `pipe` and runs it: (queue, key) -> the
        (job id, fingerprint) the key holds, None when unused."""
        wanted = list(dict.fromkeys((c.queue, k) for c in chunks for k in c.idempotency_keys()))
        for queue, key in wanted:
            pipe.get(self.keys.queue(queue).idempotency(key))
        got = await pipe.execute()
        values = got[len(got) - len(wanted) :]
        out: dict[tuple[str, str], tuple[str, str] | None] = {}
        for name, value in zip(wanted, values, strict=True):
            job_id, _, fp = value.decode().partition(" ") if value else ("", "", "")
            out[name] = (job_id, fp) if job_id else None
        return out

    async def _read_unique_keys(
        self, chunks: Sequence[_Chunk]
    ) -> dict[tuple[str, str], str | None]:
        """(queue, unique key) -> the id of the job the key names (None: none), read in one
        round trip; no command at all when no job of `chunks` has a unique key."""
        wanted = list(dict.fromkeys((c.queue, k) for c in chunks for k in c.unique_keys()))
        if not wanted:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for queue, key in wanted:
                pipe.hget(self.keys.queue(queue).unique, unique_field(key))
            values = await pipe.execute()
        return {name: unique_holder(value) for name, value in zip(wanted, values, strict=True)}

    async def _refuse_known_conflicts(
        self, chunks: Sequence[_Chunk], holders: dict[tuple[str, str], tuple[str, str] | None]
    ) -> None:
        """Raise `IdempotencyConflict` for a conflict visible before anything is written."""
        suspects: list[tuple[str, str, str]] = []  # queue, key, job id
        first: dict[tuple[str, str], NewJob] = {}  # the first job of the call using a key
        for chunk in chunks:
            for job in chunk.jobs:
                key = job.idempotency_key
                if not key:
                    continue
                holder = holders.get((chunk.queue, key))
                if holder is not None and holder[1] != (job.fingerprint or ""):
                    suspects.append((chunk.queue, key, holder[0]))
                elif holder is None:
                    earlier = first.setdefault((chunk.queue, key), job)
                    if (earlier.fingerprint or "") != (job.fingerprint or ""):
                        raise IdempotencyConflict(key, None)  # neither job exists
        if not suspects:
            return
        # A key whose job is gone counts as unused (the scripts decide so too).
        async with self.redis.pipeline(transaction=False) as pipe:
            for queue, _, job_id in suspects:
                pipe.exists(self.keys.queue(queue).job(job_id))
            alive = await pipe.execute()
        for (_, key, job_id), exists in zip(suspects, alive, strict=True):
            if exists:
                raise IdempotencyConflict(key, job_id)

    def _enqueue_call(
        self,
        chunk: _Chunk,
        holders: dict[tuple[str, str], tuple[str, str] | None],
        generation: int,
        uniques: Mapping[tuple[str, str], str | None] | None = None,
    ) -> Call:
        q = self.keys.queue(chunk.queue)
        idem = chunk.idempotency_keys()
        slot = {key: k for k, key in enumerate(idem, 1)}
        unique = chunk.unique_keys()
        unique_slot = {key: s for s, key in enumerate(unique, 1)}
        args: list[Arg] = [
            chunk.queue,
            self.keys.schedule_channel,
            len(chunk.jobs),
            self.idempotency_ttl_ms,
            len(idem),
        ]
        for j in chunk.jobs:
            args += [
                j.id,
                j.type,
                j.payload,
                "" if j.max_attempts is None else j.max_attempts,
                "" if j.timeout_ms is None else j.timeout_ms,
                j.correlation_id or "",
                _due_arg(j),
                slot[j.idempotency_key] if j.idempotency_key else "",
                (j.fingerprint or "") if j.idempotency_key else "",
                _expiry_arg(j),
                j.limit_key or "",
                f"{unique_slot[j.unique_key]} {j.unique_for_ms}" if j.unique_key else "",
                j.schedule or "",
            ]
        keys = q.header() + [q.job(j.id) for j in chunk.jobs]
        for key in idem:
            holder = holders.get((chunk.queue, key))
            args.append(holder[0] if holder else "")
            # Any job hash of the queue stands in when the key was unused.
            keys += [q.idempotency(key), q.job(holder[0] if holder else chunk.jobs[0].id)]
        keys += [q.retired, q.unique]
        args += [generation, len(unique)]
        for key in unique:
            named = (uniques or {}).get((chunk.queue, key))
            args += [key, named or ""]
            # Any job hash of the queue stands in when the key named no job.
            keys.append(q.job(named or chunk.jobs[0].id))
        return Call(self.scripts.enqueue, keys, args)

    def _chunk_done(
        self, chunk: _Chunk, reply: Any, results: dict[int, tuple[str, str | Job]]
    ) -> bool:
        """Record a chunk's rows in `results`; False when its keys must be read again."""
        read = replies.enqueue_rows(reply, chunk.jobs)
        if read is None:
            return False
        now, rows = read
        for position, job, (word, value) in zip(chunk.positions, chunk.jobs, rows, strict=True):
            if word == "created":
                results[position] = (word, _new_job(job, Status(value), now))
            else:
                results[position] = (word, value)
        return True

    async def _results(
        self, jobs: Sequence[NewJob], results: dict[int, tuple[str, str | Job]]
    ) -> list[Created]:
        """The Created of each job; jobs not created now are read back as stored."""
        built = {(j.queue, j.id): j for _, j in results.values() if isinstance(j, Job)}
        missing = list(
            dict.fromkeys(
                (jobs[i].queue, value)
                for i, (_, value) in results.items()
                if isinstance(value, str) and (jobs[i].queue, value) not in built
            )
        )
        if missing:
            async with self.redis.pipeline(transaction=False) as pipe:
                for queue, job_id in missing:
                    pipe.hgetall(self.keys.queue(queue).job(job_id))
                raws = await pipe.execute()
            for (queue, job_id), raw in zip(missing, raws, strict=True):
                if not raw:
                    raise JobNotFound(job_id)
                built[(queue, job_id)] = Job.from_hash(raw)
        out: list[Created] = []
        for i, job in enumerate(jobs):
            word, value = results[i]
            stored = value if isinstance(value, Job) else built[(job.queue, value)]
            out.append(Created(stored, word not in ("repeat", "unique")))
        return out

    # -- read -----------------------------------------------------------------------------

    async def queues(self) -> list[str]:
        names: Any = await self.redis.smembers(self.keys.queues)
        return sorted(n.decode() for n in names)

    async def get(self, job_id: str, queue: str | None = None) -> Job:
        """The job with this id; `JobNotFound` when no queue holds it.

        Without `queue`, the id index names the job's queue: two commands whatever the
        number of queues (docs/adr/0008-queue-registry.md).
        """
        where = queue or await id_index.queue_of(self.redis, self.keys, job_id)
        if where is None:
            raise JobNotFound(job_id)
        raw: Any = await self.redis.hgetall(self.keys.queue(where).job(job_id))
        if not raw:
            raise JobNotFound(job_id)
        return Job.from_hash(raw)

    async def list_jobs(self, query: ListQuery) -> Page:
        """Jobs newest first, filtered, one page after `query.cursor`.

        Each queue keeps lexically ordered id indexes (ids are ULIDs, so lexical order is
        creation order); pages are merged across queues by id. The cursor is the last id
        examined, so a page is stable under concurrent inserts: new jobs sort before it.
        The page is read without the bulky fields, then given those `query.include` asks
        for, both within `query.max_bytes`.
        """
        budget = Budget(query.max_bytes)
        return await self._with_bulky(await self._light_page(query, budget), query, budget)

    async def _light_page(self, query: ListQuery, budget: Budget) -> Page:
        queues = [query.queue] if query.queue else await self.queues()
        statuses = set(query.statuses)
        upper, lower = _bounds(query)
        index_keys = self._index_keys(queues, query.statuses)
        items: list[Job] = []
        scanned_budget = max(query.limit * 20, 1000)
        # The indexes answer the queue and status filters, so a batch of `limit` ids
        # nearly always fills the page; only the type filter (read from each hash) needs
        # more ids per round trip.
        batch = min(max(query.limit * 2 if query.type else query.limit, 20), 1000)
        while True:
            ids = await self._range(index_keys, upper, lower, batch)
            if not ids:
                return Page(items, None)
            for (job_id, _queue), (job, size) in zip(
                ids, await self._fetch_light(ids), strict=True
            ):
                scanned_budget -= 1
                wanted = (
                    job is not None
                    and (not statuses or job.status in statuses)
                    and (not query.type or job.type == query.type)
                )
                if wanted and not budget.take(size, first=not items):
                    return Page(items, items[-1].id)  # full by bytes: the rest next time
                upper = f"({job_id}"
                if wanted:
                    assert job is not None
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

    async def _fetch_light(self, ids: list[tuple[str, str]]) -> list[tuple[Job | None, int]]:
        """Each job without its bulky fields (None: gone), and the bytes it was stored in."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id, q in ids:
                pipe.hmget(self.keys.queue(q).job(job_id), LIGHT_FIELDS)
            rows: list[Any] = await pipe.execute()
        out: list[tuple[Job | None, int]] = []
        for row in rows:
            raw = {
                name.encode(): v for name, v in zip(LIGHT_FIELDS, row, strict=True) if v is not None
            }
            if b"id" not in raw:
                out.append((None, 0))
                continue
            out.append((Job.from_hash(raw), sum(len(v) + FIELD_OVERHEAD for v in raw.values())))
        return out

    async def _with_bulky(self, page: Page, query: ListQuery, budget: Budget) -> Page:
        """`page` with the bulky fields `query.include` asks for, read only for as many
        jobs as fit in what is left of the byte budget (their stored sizes first, with
        HSTRLEN, then the values of those that fit): the page ends early at the first job
        that does not fit, but never before its first job."""
        wanted = sorted(BULKY_FIELDS & query.include)
        if not wanted or not page.items:
            return page
        async with self.redis.pipeline(transaction=False) as pipe:
            for job in page.items:
                key = self.keys.queue(job.queue).job(job.id)
                for name in wanted:
                    pipe.hstrlen(key, name)
            lengths: list[Any] = await pipe.execute()
        kept = len(page.items)
        for i in range(len(page.items)):
            size = sum(int(n) for n in lengths[i * len(wanted) : (i + 1) * len(wanted)])
            if not budget.take(size, first=i == 0):
                kept = i
                break
        async with self.redis.pipeline(transaction=False) as pipe:
            for job in page.items[:kept]:
                pipe.hmget(self.keys.queue(job.queue).job(job.id), wanted)
            values: list[Any] = await pipe.execute()
        items = [
            replace(job, **{n: codec.decode(v) for n, v in zip(wanted, row, strict=True)})
            for job, row in zip(page.items[:kept], values, strict=True)
        ]
        if kept < len(page.items):
            return Page(items, items[-1].id)
        return Page(items, page.next_cursor)

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
        return replies.cancel_outcome(result, job_id), await self.get(job_id, job.queue)

    # -- replay ---------------------------------------------------------------------------

    async def replay(self, job_id: str) -> Job:
        """Run a failed or canceled job again (now pending, attempts from 0, history and
        last_error kept): `InvalidTransition` from any other status, `JobNotFound`."""
        job = await self.get(job_id)
        q = self.keys.queue(job.queue)
        result = await self.scripts.replay(self.redis, [*q.header(), q.job(job_id)], [job_id])
        replies.replayed(result, job_id)
        return await self.get(job_id, job.queue)

    # -- purge ----------------------------------------------------------------------------

    async def purge(self, queue: str, status: Status | str, batch: int | None = None) -> int:
        """Delete the finished jobs of `queue` in `status` (completed, failed, canceled or
        expired: `ValidationError` for any other) before their retention ends; the number
        removed.

        As many as were there at the start at most, in batches of `batch` (`bulk.purge`),
        so jobs that keep finishing while it runs cannot keep it going forever (some may
        remain). Idempotency keys naming a purged job count as unused from then on.
        """
        wanted = bulk.finished(status)
        at_start: Any = await self.redis.zcard(self.keys.queue(queue).index(wanted))
        if not int(at_start):
            bulk.check_batch(batch)
            return 0
        result = await bulk.purge(self.redis, self.keys, queue, wanted, int(at_start), batch)
        return result.done


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


def _due_arg(job: NewJob) -> str | int:
    """enqueue.lua's due argument: '' now, an epoch ms, or '+<ms>' after its Redis TIME."""
    if job.delay_ms:
        return f"+{job.delay_ms}"
    return "" if job.due_ms is None else job.due_ms


def _expiry_arg(job: NewJob) -> str | int:
    """enqueue.lua's expires argument: '' never, an epoch ms, or '+<ms>' after its TIME."""
    if job.expire_after_ms:
        return f"+{job.expire_after_ms}"
    return "" if job.expires_ms is None else job.expires_ms


def _new_job(spec: NewJob, status: Status, now: int) -> Job:
    return Job(
        id=spec.id,
        type=spec.type,
        queue=spec.queue,
        status=status,
        payload=codec.decode(spec.payload)
        if spec.payload_value is NOT_KEPT
        else spec.payload_value,
        attempts=0,
        max_attempts=spec.max_attempts,
        timeout_seconds=None if spec.timeout_ms is None else spec.timeout_ms / 1000,
        correlation_id=spec.correlation_id,
        limit_key=spec.limit_key,
        schedule=spec.schedule,
        created_at=now,
        updated_at=now,
        run_at=(now + (spec.delay_ms or 0) if spec.due_ms is None else spec.due_ms)
        if status is Status.SCHEDULED
        else None,
        expires_at=now + spec.expire_after_ms if spec.expire_after_ms else spec.expires_ms,
    )
