"""Every Redis key and channel name Conveyor uses, built in one place.

All keys of one queue share the hash tag ``{<queue>}``, so a queue lives in one Redis
Cluster slot and each transition script only touches keys of that slot. The layout is
documented for redis-cli users in docs/redis-layout.md.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from functools import lru_cache

from conveyor.states import Status

ID_SHARDS = 256  # hashes the id index is spread over (store/id_index.py)
GROUP = "workers"  # the consumer group every worker of a queue reads through
ENTRY_FIELD = b"id"  # the one field of a stream entry: the job id

# The order of the standard keys every transition script receives first. The Lua library
# (lua/_lib.lua) indexes KEYS with the same numbers; tests check that both agree.
STATUS_ORDER: tuple[Status, ...] = (
    Status.SCHEDULED,
    Status.PENDING,
    Status.RUNNING,
    Status.RETRYING,
    Status.COMPLETED,
    Status.FAILED,
    Status.CANCELED,
)
# Status indexes added after the expiries key (positions 12..), so that the positions of
# the keys before stay where they were when the header held 11 keys.
LATE_STATUS_ORDER: tuple[Status, ...] = (Status.EXPIRED,)


@dataclass(frozen=True, slots=True)
class QueueKeys:
    prefix: str
    queue: str
    base: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", f"{self.prefix}:{{{self.queue}}}")

    @property
    def stream(self) -> str:
        return f"{self.base}:stream"

    @property
    def delayed(self) -> str:
        """zset of scheduled and retrying job ids, score = due time (epoch ms)."""
        return f"{self.base}:delayed"

    @property
    def all_index(self) -> str:
        """zset of every job id of the queue, all scores 0: lexical order = creation order."""
        return f"{self.base}:idx:all"

    def index(self, status: Status) -> str:
        """zset of the job ids in `status`, all scores 0 (ordered by id, i.e. creation)."""
        return f"{self.base}:idx:{status.value}"

    @property
    def expiries(self) -> str:
        """zset of finished job ids, score = when their hash expires (epoch ms)."""
        return f"{self.base}:expiries"

    def job(self, job_id: str) -> str:
        return f"{self.base}:job:{job_id}"

    @property
    def throughput(self) -> str:
        """hash: finished jobs per minute, a ring of one-minute slots (store/throughput.py)."""
        return f"{self.base}:throughput"

    def idempotency(self, key: str) -> str:
        """string "<job_id> <fingerprint>": the job an idempotency key was first used for;
        expires after the idempotency ttl."""
        return f"{self.base}:idem:{key}"

    @property
    def paused(self) -> str:
        """string: present while the queue is paused, holding when it was paused (epoch ms,
        Redis clock); no job of the queue starts meanwhile (store/pause.py)."""
        return f"{self.base}:paused"

    @property
    def unique(self) -> str:
        """hash of the queue's unique keys: ``k:<key>`` -> ``"<job_id> <unique_for_ms>"``,
        the job holding it, and ``j:<job_id>`` -> the key back; both dropped with the job
        (enqueue.lua, expire.lua, purge.lua)."""
        return f"{self.base}:unique"

    @property
    def retired(self) -> str:
        """string: the registration generation under which this queue, found empty, left
        (or is leaving) the registry; kept for an hour (store/registry.py)."""
        return f"{self.base}:retired"

    @property
    def limits(self) -> str:
        """hash: limit key -> its concurrency and rate limits, compact JSON (ADR 0017; the
        scripts derive the per-key slots, held and rate keys from the stream's name)."""
        return f"{self.base}:limits"

    def limit_slots(self, limit_key: str) -> str:
        """zset of the jobs holding a running slot of `limit_key`, score = lease deadline."""
        return f"{self.base}:slots:{limit_key}"

    def limit_held(self, limit_key: str) -> str:
        """zset of the pending jobs waiting for a slot of `limit_key`, score = since when."""
        return f"{self.base}:held:{limit_key}"

    def limit_rate(self, limit_key: str) -> str:
        """string: the GCRA theoretical arrival time of `limit_key` (epoch ms)."""
        return f"{self.base}:rate:{limit_key}"

    def header(self) -> list[str]:
        """The 12 keys every transition script takes first, in the Lua library's order."""
        return _header(self.prefix, self.queue)


def unique_field(key: str) -> str:
    """The field of `QueueKeys.unique` naming the job that holds unique key `key`."""
    return f"k:{key}"


def unique_holder(value: bytes | None) -> str | None:
    """The job id a `QueueKeys.unique` field names, read as enqueue.lua reads it (None for
    none, or for a value it would not read either)."""
    found = _UNIQUE_VALUE.fullmatch(value) if value else None
    return found.group(1).decode() if found else None


_UNIQUE_VALUE = re.compile(rb"(\S+) ([0-9]+)")


@lru_cache(maxsize=4096)
def _header(prefix: str, queue: str) -> list[str]:
    q = QueueKeys(prefix, queue)
    return [
        q.stream,
        q.delayed,
        q.all_index,
        *(q.index(s) for s in STATUS_ORDER),
        q.expiries,
        *(q.index(s) for s in LATE_STATUS_ORDER),
    ]


HEADER_SIZE = 3 + len(STATUS_ORDER) + 1 + len(LATE_STATUS_ORDER)


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "conveyor"

    def queue(self, name: str) -> QueueKeys:
        return _queue_keys(self.prefix, name)

    @property
    def queues(self) -> str:
        """set of the queues that hold jobs (or are about to, or are consumed by a worker
        that started since they were last empty); at most `max_queues` from creates."""
        return f"{self.prefix}:queues"

    @property
    def queue_generations(self) -> str:
        """hash: queue name -> its registration generation, and ``#seq`` -> the last one
        given. Hash-tagged with the registry's own name, so both share one Cluster slot
        and one script writes them together (store/registry.py); it starts with the
        prefix, as every key does, so an ACL user limited to ``~<prefix>*`` reaches it."""
        return f"{self.prefix}:gen{{{self.prefix}:queues}}"

    def id_index(self, job_id: str) -> str:
        """hash: job id -> its queue, for the ids whose CRC32 falls in this shard. Written
        before a job's enqueue script, removed after its hash is gone (store/id_index.py)."""
        return f"{self.prefix}:ids:{zlib.crc32(job_id.encode()) % ID_SHARDS}"

    @property
    def id_index_filled(self) -> str:
        """string: set once the scheduler has written the id index entries of the jobs
        created before the index existed (store/id_index.py, `backfill`)."""
        return f"{self.prefix}:ids:filled"

    @property
    def workers(self) -> str:
        """zset of live worker ids, score = last heartbeat (epoch ms)."""
        return f"{self.prefix}:workers"

    def worker(self, worker_id: str) -> str:
        """hash describing one worker; expires when its heartbeats stop."""
        return f"{self.prefix}:worker:{worker_id}"

    @property
    def concurrency(self) -> str:
        """hash: queue name -> the concurrency every worker of that queue is asked to run
        (store/concurrency.py); a worker's own request is a field of its hash."""
        return f"{self.prefix}:concurrency"

    @property
    def cancel_channel(self) -> str:
        """pub/sub channel: job ids whose running attempt was asked to stop."""
        return f"{self.prefix}:cancel"

    @property
    def schedules(self) -> str:
        """zset of periodic schedule names, score = next fire time (epoch ms). Hash-tagged
        with its own name, as each schedule's hash is: the schedule scripts run in one
        Cluster slot (store/schedules.py)."""
        return f"{self.prefix}:schedules{{{self.prefix}:schedules}}"

    def schedule(self, name: str) -> str:
        """hash: one periodic schedule's definition and its next/last fire."""
        return f"{self.prefix}:schedule{{{self.prefix}:schedules}}:{name}"

    @property
    def schedule_channel(self) -> str:
        """pub/sub channel: queue names whose earliest due time moved earlier."""
        return f"{self.prefix}:schedule"


@lru_cache(maxsize=4096)
def _queue_keys(prefix: str, queue: str) -> QueueKeys:
    return QueueKeys(prefix, queue)
