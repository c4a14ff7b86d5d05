"""Inserting a very large number of finished jobs fast, for scale tests.

Going through enqueue, claim and finish would take minutes for a million jobs, so this
writes what those scripts leave behind for a finished job, directly, with a Lua script that
builds a chunk of jobs server side: the job hash (the fields `Job.from_hash` reads, a
msgpack payload, a history entry, `last_error` for failed jobs), its retention TTL, and its
entries in ``idx:all``, ``idx:<status>`` and ``expiries``, as complete.lua and fail.lua
write them. Job ids are well-formed ULIDs: each chunk has its own millisecond, and the
random part is the job's number in decimal, zero-padded (decimal digits are Crockford
base32 digits too), so creation order is id order, as with real ids.

The script builds the job hash keys from a prefix instead of receiving them in KEYS (a
chunk has 20,000 of them). That is fine on the private single-node redis-server this runs
on and would be wrong on a Cluster; production scripts never do it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgpack
from redis.asyncio import Redis

from conveyor.ids import job_id_bound
from conveyor.states import Status
from conveyor.store.keys import Keys

CHUNK = 20_000  # jobs per script call: each call runs a fraction of a second
RETENTION_MS = 7 * 86_400_000

_SCRIPT = """
local all, completed_idx, failed_idx, expiries = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local job_prefix, id_prefix, queue, job_type = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local first, count, created = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local failed_every, payload, ttl = tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10])
local by_index = {[all] = {}, [completed_idx] = {}, [failed_idx] = {}}
local expiring = {}
local finished = created + 5
local function flush(key, members, scored)
  local args = {}
  for _, id in ipairs(members) do
    args[#args + 1] = scored or 0
    args[#args + 1] = id
    if #args >= 2000 then
      redis.call('ZADD', key, unpack(args))
      args = {}
    end
  end
  if #args > 0 then redis.call('ZADD', key, unpack(args)) end
end
local err = 'RuntimeError: upstream timed out'
local attempt = '[{"attempt":1,"worker":"bulk-1","started_at":' .. created ..
  ',"finished_at":' .. finished .. ',"outcome":"'
local history = {completed = attempt .. 'completed"}]',
  failed = attempt .. 'failed","error":"' .. err .. '"}]'}
for n = first, first + count - 1 do
  -- Decimal digits are Crockford base32 digits too: zero-padded, they sort like numbers.
  local id = id_prefix .. string.format('%016d', n)
  local key = job_prefix .. id
  local failed = failed_every > 0 and n % failed_every == 0
  if failed then
    redis.call('HSET', key, 'id', id, 'type', job_type, 'queue', queue, 'status', 'failed',
      'payload', payload, 'attempts', 1, 'deliveries', 1, 'lost', 0, 'created_at', created,
      'updated_at', finished, 'started_at', created, 'finished_at', finished,
      'history', history.failed, 'last_error', err)
  else
    redis.call('HSET', key, 'id', id, 'type', job_type, 'queue', queue, 'status', 'completed',
      'payload', payload, 'attempts', 1, 'deliveries', 1, 'lost', 0, 'created_at', created,
      'updated_at', finished, 'started_at', created, 'finished_at', finished,
      'history', history.completed, 'result', payload)
  end
  redis.call('PEXPIRE', key, ttl)
  table.insert(by_index[all], id)
  table.insert(by_index[failed and failed_idx or completed_idx], id)
  table.insert(expiring, id)
end
flush(all, by_index[all])
flush(completed_idx, by_index[completed_idx])
flush(failed_idx, by_index[failed_idx])
flush(expiries, expiring, finished + ttl)
return count
"""


@dataclass(frozen=True, slots=True)
class Inserted:
    total: int
    failed: int


async def insert_finished_jobs(
    redis: Redis,
    keys: Keys,
    queue: str,
    total: int,
    *,
    job_type: str = "email.send",
    failed_every: int = 10,
    start_ms: int = 1_893_499_200_000,
) -> Inserted:
    """`total` finished jobs in `queue`: every `failed_every`-th failed, the rest completed.
    Their creation times start at `start_ms`, one millisecond per chunk."""
    q = keys.queue(queue)
    payload = msgpack.packb({"to": "ada@example.com", "template": "welcome", "locale": "en"})
    sha = hashlib.sha1(_SCRIPT.encode(), usedforsecurity=False).hexdigest()
    await redis.script_load(_SCRIPT)
    await redis.sadd(keys.queues, queue)
    index_keys = [q.all_index, q.index(Status.COMPLETED), q.index(Status.FAILED), q.expiries]
    async with redis.pipeline(transaction=False) as pipe:
        for chunk, first in enumerate(range(0, total, CHUNK)):
            created = start_ms + chunk
            pipe.evalsha(
                sha,
                len(index_keys),
                *index_keys,
                q.job(""),
                job_id_bound(created, upper=False)[:10],
                queue,
                job_type,
                first,
                min(CHUNK, total - first),
                created,
                failed_every,
                payload,
                RETENTION_MS,
            )
        await pipe.execute()
    failed = len(range(0, total, failed_every)) if failed_every > 0 else 0
    return Inserted(total, failed)
