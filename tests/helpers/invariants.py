"""Cross-key invariants of the Redis layout (docs/redis-layout.md), checked from the outside.

`check_invariants` reads every structure of the given queues and returns what contradicts
the job state machine: each violation is one readable line, and an empty list means the
data is consistent. It reads with plain commands, not one atomic snapshot, so run it when
nothing is changing the queues (after a test's steps, after workers stopped, after a fault
was injected and the system settled).

What is checked, for every job hash ``<prefix>:{<queue>}:job:<id>``:

- pending   <=> its `entry` is on the stream, and no other entry carries its id;
- running   <=> its `entry` is on the stream and in the group's PEL (owned by its `worker`);
- scheduled / retrying <=> it is in `delayed` and on neither the stream nor the PEL;
- terminal (completed, failed, canceled, expired) => on none of stream, PEL, delayed; its
  hash has a TTL; it is in `expiries`;
- it is in exactly one status index, the one of its status, and in `idx:all`;

and in the other direction (orphans): every stream entry, PEL entry and delayed member
belongs to a job in the matching state, and an index member without a hash is allowed only
for a finished job whose retention is over (listed in `expiries`, awaiting expire.lua).

A queue holding a job is in the registry, and each job's id index entry names its queue.

Every idempotency key ``<prefix>:{<queue>}:idem:<key>`` is a string "<job_id> <fingerprint>"
with a TTL; the job it names may be gone (its retention ended before the key's ttl).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from conveyor.states import DELAYED, TERMINAL, Status
from conveyor.store.keys import ENTRY_FIELD, GROUP, Keys, QueueKeys

REQUIRED_FIELDS = ("id", "type", "queue", "status", "created_at", "updated_at")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_IDEM_VALUE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26} (?:[0-9a-f]{64})?")


@dataclass
class _QueueState:
    """Everything read from Redis for one queue."""

    jobs: dict[str, dict[str, bytes]] = field(default_factory=dict)
    ttls: dict[str, int] = field(default_factory=dict)
    entries: dict[str, str | None] = field(default_factory=dict)  # entry id -> job id
    pel: dict[str, str] = field(default_factory=dict)  # entry id -> consumer
    delayed: set[str] = field(default_factory=set)
    all_index: set[str] = field(default_factory=set)
    indexes: dict[Status, set[str]] = field(default_factory=dict)
    expiries: set[str] = field(default_factory=set)
    idem: dict[str, tuple[bytes | None, int]] = field(default_factory=dict)  # key -> value, ttl


async def check_invariants(
    r: Redis,
    keys: Keys,
    queues: Iterable[str] | None = None,
    *,
    check_owner: bool = True,
    allow_delivered_pending: bool = True,
) -> list[str]:
    """Every violation of the layout's invariants in `queues`; [] when consistent.

    `check_owner`: a running job's PEL entry must belong to the consumer in its `worker`
    field (false only between an XAUTOCLAIM and the claim script that follows it).
    `allow_delivered_pending`: a pending job's entry may sit in the PEL (read by a worker
    that has not claimed it yet); pass False when every read delivery was claimed.
    `queues`: None checks every queue in the `<prefix>:queues` set.
    """
    if queues is None:
        names: Any = await r.smembers(keys.queues)
        queues = sorted(_text(n) for n in names)
    problems: list[str] = []
    for queue in queues:
        q = keys.queue(queue)
        state = await _read_queue(r, q, problems)
        _check_jobs(queue, state, problems, check_owner, allow_delivered_pending)
        _check_orphans(queue, state, problems)
        await _check_registry_and_id_index(r, keys, queue, state, problems)
    return problems


async def _check_registry_and_id_index(
    r: Redis, keys: Keys, queue: str, state: _QueueState, problems: list[str]
) -> None:
    """A queue holding a job is registered, and every job's id index entry names its
    queue (docs/adr/0008-queue-registry.md)."""
    if not state.jobs:
        return
    if not await r.sismember(keys.queues, queue):
        problems.append(f"{queue}: holds {len(state.jobs)} job(s) but is not registered")
    ids = sorted(state.jobs)
    async with r.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(keys.id_index(job_id), job_id)
        entries: list[Any] = await pipe.execute()
    for job_id, entry in zip(ids, entries, strict=True):
        if entry is None or _text(entry) != queue:
            problems.append(f"{queue}/{job_id}: id index names {entry!r}, not its queue")


async def assert_invariants(
    r: Redis, keys: Keys, queues: Iterable[str] | None = None, **kw: Any
) -> None:
    problems = await check_invariants(r, keys, queues, **kw)
    assert problems == [], "invariant violations:\n" + "\n".join(problems)


# -- reading --------------------------------------------------------------------------------


def _glob_escape(text: str) -> str:
    return _GLOB_SPECIAL.sub(r"\\\1", text)


async def _key_type(r: Redis, key: str) -> str:
    value: Any = await r.type(key)
    return value.decode() if isinstance(value, bytes) else str(value)


async def _typed(r: Redis, key: str, want: str, problems: list[str]) -> bool:
    """True when `key` exists with type `want`; a wrong type is itself a violation."""
    kind = await _key_type(r, key)
    if kind == "none":
        return False
    if kind != want:
        problems.append(f"{key}: is a {kind}, expected a {want}")
        return False
    return True


async def _zmembers(r: Redis, key: str, problems: list[str]) -> set[str]:
    if not await _typed(r, key, "zset", problems):
        return set()
    members: Any = await r.zrange(key, 0, -1)
    return {_text(m) for m in members}


async def _read_queue(r: Redis, q: QueueKeys, problems: list[str]) -> _QueueState:
    state = _QueueState()
    job_keys: list[str] = []
    async for key in r.scan_iter(match=f"{_glob_escape(q.base)}:job:*", count=1000):
        job_keys.append(_text(key))
    async with r.pipeline(transaction=False) as pipe:
        for key in job_keys:
            pipe.type(key)
            pipe.hgetall(key)
            pipe.pttl(key)
        replies = await pipe.execute(raise_on_error=False)
    job_prefix = q.job("")
    for i, key in enumerate(job_keys):
        kind, raw, ttl = replies[3 * i : 3 * i + 3]
        job_id = key[len(job_prefix) :]
        if _text(kind) == "none":
            continue  # expired while we read
        if _text(kind) != "hash":
            problems.append(f"{key}: is a {_text(kind)}, expected a hash")
            continue
        state.jobs[job_id] = {_text(k): v for k, v in raw.items()}
        state.ttls[job_id] = int(ttl)

    if await _typed(r, q.stream, "stream", problems):
        entries: Any = await r.xrange(q.stream)
        for entry_id, fields in entries:
            value = fields.get(ENTRY_FIELD)
            state.entries[_text(entry_id)] = None if value is None else _text(value)
        groups: Any = await r.xinfo_groups(q.stream)
        if any(_text(g["name"]) == GROUP for g in groups):
            rows: Any = await r.xpending_range(q.stream, GROUP, "-", "+", 1_000_000)
            state.pel = {_text(row["message_id"]): _text(row["consumer"]) for row in rows}

    state.delayed = await _zmembers(r, q.delayed, problems)
    state.all_index = await _zmembers(r, q.all_index, problems)
    state.indexes = {s: await _zmembers(r, q.index(s), problems) for s in Status}
    state.expiries = await _zmembers(r, q.expiries, problems)
    await _read_idempotency_keys(r, q, state, problems)
    return state


async def _read_idempotency_keys(
    r: Redis, q: QueueKeys, state: _QueueState, problems: list[str]
) -> None:
    names: list[str] = []
    async for key in r.scan_iter(match=f"{_glob_escape(q.base)}:idem:*", count=1000):
        names.append(_text(key))
    async with r.pipeline(transaction=False) as pipe:
        for key in names:
            pipe.type(key)
            pipe.get(key)
            pipe.pttl(key)
        replies = await pipe.execute(raise_on_error=False)
    for i, key in enumerate(names):
        kind, value, ttl = replies[3 * i : 3 * i + 3]
        if _text(kind) == "none":
            continue  # expired while we read
        if _text(kind) != "string":
            problems.append(f"{key}: is a {_text(kind)}, expected a string")
            continue
        state.idem[key] = (value, int(ttl))


# -- checking -------------------------------------------------------------------------------


@dataclass
class _Job:
    """One job hash with what the queue's structures say about it."""

    id: str
    h: dict[str, bytes]
    status: Status
    entry: str | None
    on_stream: list[str]  # stream entries carrying its id
    in_pel: list[str]  # PEL entries carrying its id
    ttl: int

    @property
    def where(self) -> str:
        return f"job {self.id} ({self.status.value})"


def _check_jobs(
    queue: str,
    state: _QueueState,
    problems: list[str],
    check_owner: bool,
    allow_delivered_pending: bool,
) -> None:
    by_job: dict[str, list[str]] = {}
    for entry_id, job_id in state.entries.items():
        if job_id is not None:
            by_job.setdefault(job_id, []).append(entry_id)
    pel_by_job: dict[str, list[str]] = {}
    for entry_id in state.pel:
        job_id = state.entries.get(entry_id)
        if job_id is not None:
            pel_by_job.setdefault(job_id, []).append(entry_id)

    for job_id, h in state.jobs.items():
        found: list[str] = []
        status = _check_fields(queue, job_id, h, found)
        if status is not None:
            job = _Job(
                id=job_id,
                h=h,
                status=status,
                entry=_text(h["entry"]) if "entry" in h else None,
                on_stream=by_job.get(job_id, []),
                in_pel=pel_by_job.get(job_id, []),
                ttl=state.ttls.get(job_id, -1),
            )
            if status is Status.PENDING and "held" in h:
                _check_held(job, found)
            elif status in (Status.PENDING, Status.RUNNING):
                _check_on_stream(job, state, found, check_owner, allow_delivered_pending)
            elif status in DELAYED:
                _check_delayed(job, state, found)
            else:
                _check_finished(job, state, found)
            _check_indexes(job, state, found)
        problems += [f"[{queue}] {p}" for p in found]


def _check_fields(queue: str, job_id: str, h: dict[str, bytes], say: list[str]) -> Status | None:
    missing = [name for name in REQUIRED_FIELDS if name not in h]
    if missing:
        say.append(f"job {job_id}: hash lacks {missing}")
    if "id" in h and _text(h["id"]) != job_id:
        say.append(f"job {job_id}: field id is {_text(h['id'])!r}")
    if "queue" in h and _text(h["queue"]) != queue:
        say.append(f"job {job_id}: field queue is {_text(h['queue'])!r}")
    try:
        return Status(_text(h.get("status", b"")))
    except ValueError:
        say.append(f"job {job_id}: unknown status {h.get('status')!r}")
        return None


def _check_on_stream(
    job: _Job,
    state: _QueueState,
    say: list[str],
    check_owner: bool,
    allow_delivered_pending: bool,
) -> None:
    """pending and running: exactly its own entry on the stream; running: in the PEL."""
    w = job.where
    if job.entry is None:
        say.append(f"{w}: has no entry field")
    if job.on_stream != [job.entry]:
        say.append(f"{w}: entry {job.entry} but stream entries for it are {job.on_stream}")
    if job.id in state.delayed:
        say.append(f"{w}: is also in delayed")
    if job.ttl != -1:
        say.append(f"{w}: has a TTL ({job.ttl} ms) though not finished")
    if job.status is Status.PENDING:
        if "token" in job.h:
            say.append(f"{w}: still has a fencing token")
        if job.in_pel and not allow_delivered_pending:
            holders = [state.pel[e] for e in job.in_pel]
            say.append(f"{w}: its entry is in the PEL of {holders}")
        return
    worker = _text(job.h.get("worker", b""))
    if job.entry is None or job.entry not in state.pel:
        say.append(f"{w}: entry {job.entry} is not in the group's PEL")
    elif check_owner and state.pel[job.entry] != worker:
        say.append(f"{w}: PEL owner {state.pel[job.entry]} but worker field {worker!r}")
    if "token" not in job.h or not worker:
        say.append(f"{w}: lacks token or worker")


def _check_held(job: _Job, say: list[str]) -> None:
    """pending, held by a full concurrency limit (ADR 0017): off the stream until a slot
    frees, no attempt, no token."""
    if job.on_stream or job.in_pel:
        say.append(f"{job.where}: held, yet on the stream {job.on_stream} / PEL {job.in_pel}")
    if "token" in job.h or "slots" in job.h:
        say.append(f"{job.where}: held, yet has a token or slots")
    if job.ttl != -1:
        say.append(f"{job.where}: has a TTL ({job.ttl} ms) though not finished")


def _check_delayed(job: _Job, state: _QueueState, say: list[str]) -> None:
    """scheduled and retrying: in delayed, nowhere on the stream."""
    if job.id not in state.delayed:
        say.append(f"{job.where}: not in delayed")
    if job.on_stream or job.in_pel:
        say.append(f"{job.where}: still on the stream {job.on_stream} / PEL {job.in_pel}")
    if job.ttl != -1:
        say.append(f"{job.where}: has a TTL ({job.ttl} ms) though not finished")


def _check_finished(job: _Job, state: _QueueState, say: list[str]) -> None:
    """completed, failed, canceled and expired: out of every structure, retained with a
    TTL."""
    w = job.where
    if job.on_stream or job.in_pel:
        say.append(f"{w}: still on the stream {job.on_stream} / PEL {job.in_pel}")
    if job.id in state.delayed:
        say.append(f"{w}: still in delayed")
    if job.ttl < 0:
        say.append(f"{w}: finished but its hash has no TTL")
    if job.id not in state.expiries:
        say.append(f"{w}: finished but not in expiries")
    if "finished_at" not in job.h:
        say.append(f"{w}: finished but has no finished_at")
    if "token" in job.h:
        say.append(f"{w}: finished but still has a fencing token")


def _check_indexes(job: _Job, state: _QueueState, say: list[str]) -> None:
    holders = {s for s, members in state.indexes.items() if job.id in members}
    if holders != {job.status}:
        say.append(f"{job.where}: in status indexes {sorted(s.value for s in holders)}")
    if job.id not in state.all_index:
        say.append(f"{job.where}: not in idx:all")


def _check_orphans(queue: str, state: _QueueState, problems: list[str]) -> None:
    found: list[str] = []
    _orphan_entries(state, found)
    _orphan_members(state, found)
    _check_idempotency_keys(state, found)
    problems += [f"[{queue}] {p}" for p in found]


def _status(state: _QueueState, job_id: str | None) -> str:
    if job_id is None or job_id not in state.jobs:
        return "missing"
    return _text(state.jobs[job_id].get("status", b"?"))


def _orphan_entries(state: _QueueState, say: list[str]) -> None:
    """Every stream entry and PEL entry belongs to a job waiting or running on it."""
    for entry_id, job_id in state.entries.items():
        s = _status(state, job_id)
        if job_id is None:
            say.append(f"stream entry {entry_id}: has no id field")
        elif s not in ("pending", "running"):
            say.append(f"stream entry {entry_id}: job {job_id} is {s}")
        elif _text(state.jobs[job_id].get("entry", b"")) != entry_id:
            say.append(f"stream entry {entry_id}: job {job_id} points at another entry")
    for entry_id, consumer in state.pel.items():
        if entry_id not in state.entries:
            say.append(f"PEL entry {entry_id} of {consumer}: not on the stream any more")


def _orphan_members(state: _QueueState, say: list[str]) -> None:
    """Every zset member belongs to a job in the matching state, or (indexes, expiries) to
    a finished job whose hash already expired."""
    terminal = {t.value for t in TERMINAL}
    for job_id in state.delayed:
        s = _status(state, job_id)
        if s not in ("scheduled", "retrying"):
            say.append(f"delayed member {job_id}: job is {s}")
    for job_id in state.expiries:
        s = _status(state, job_id)
        if s != "missing" and s not in terminal:
            say.append(f"expiries member {job_id}: job is {s}")
    for index, members in state.indexes.items():
        for job_id in members - state.jobs.keys():
            if index not in TERMINAL or job_id not in state.expiries:
                say.append(f"idx:{index.value} member {job_id}: job hash is missing")
    for job_id in state.all_index - state.jobs.keys():
        if job_id not in state.expiries:
            say.append(f"idx:all member {job_id}: job hash is missing")


def _check_idempotency_keys(state: _QueueState, say: list[str]) -> None:
    """Each key names one job id and a fingerprint, and expires."""
    for key, (value, ttl) in state.idem.items():
        if value is None:
            continue  # expired while we read
        if not _IDEM_VALUE.fullmatch(_text(value)):
            say.append(f"{key}: holds {_text(value)!r}, expected '<job_id> <fingerprint>'")
        if ttl < 0:
            say.append(f"{key}: has no TTL")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
