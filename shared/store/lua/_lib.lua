-- Library prepended to every transition script by shared/store/scripts.py.
--
-- KEYS layout shared by the transition scripts (shared/store/keys.py, QueueKeys.header):
--   1 stream, 2 delayed, 3 idx:all, 4..10 idx:<status> (scheduled pending running retrying
--   completed failed canceled), 11 expiries, 12 idx:expired (added after the expiries so
--   that the positions before stayed), 13.. one job hash per job the script handles.
-- Every key belongs to one queue's {hash tag}, so each script runs in one Cluster slot.
--
-- Rule for every script: read and check everything a job needs first, write last. Redis
-- does not roll back a script that fails halfway.
local K_STREAM, K_DELAYED, K_ALL, K_EXPIRIES, FIRST_JOB = 1, 2, 3, 11, 13
local QUEUE_KEYS = 12
-- Offset of the current queue's keys in KEYS: 0, except in read_claim.lua, which takes the
-- 12 keys of each of several queues and sets it to the queue it works on.
local B = 0
local GROUP = 'workers'
local INDEX = {
  scheduled = 4, pending = 5, running = 6, retrying = 7,
  completed = 8, failed = 9, canceled = 10, expired = 12,
}
local HISTORY_LIMIT = 20

-- The type of each key a transition script takes, in KEYS order: the 12 queue keys, then
-- job hashes. An absent key ('none') is always fine.
local KEY_TYPES = {'stream', 'zset', 'zset', 'zset', 'zset', 'zset', 'zset', 'zset', 'zset',
  'zset', 'zset', 'zset'}

-- An error reply when a key holds another type, else nil. Checked before the first write:
-- a command failing with WRONGTYPE halfway through would keep the writes made before it.
-- `want_of(i)` (optional) names the type of KEYS[i] for a script that also takes keys other
-- than job hashes after the queue keys; nil from it means the default above. `untouched`
-- (optional): a set of KEYS indexes the script never reads or writes, not checked (a key
-- it does not touch cannot fail it halfway).
local function wrong_key_type(want_of, untouched)
  for i = 1, #KEYS do
    local want = KEY_TYPES[i] or (want_of and want_of(i)) or 'hash'
    local got = (untouched and untouched[i]) and 'none' or redis.call('TYPE', KEYS[i])['ok']
    if got ~= 'none' and got ~= want then
      return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' holds a ' .. got ..
        ', expected a ' .. want .. '; nothing was written')
    end
  end
  return nil
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function job_count()
  return #KEYS - FIRST_JOB + 1
end

-- Move a job id from one status index to another (from may be nil for a new job).
local function reindex(id, from, to)
  if from == to then return end
  if from and INDEX[from] then redis.call('ZREM', KEYS[B + INDEX[from]], id) end
  redis.call('ZADD', KEYS[B + INDEX[to]], 0, id)
end

-- Acknowledge a stream entry and delete it, so XLEN counts only waiting and running jobs.
-- XDEL does not touch the PEL, hence both, in the same script.
local function ack(entry)
  redis.call('XACK', KEYS[B + K_STREAM], GROUP, entry)
  redis.call('XDEL', KEYS[B + K_STREAM], entry)
end

local function push(id)
  return redis.call('XADD', KEYS[B + K_STREAM], '*', 'id', id)
end

-- Add a job to the delayed zset; tell the schedulers when it became the earliest due job.
local function schedule(id, due, channel, queue)
  local head = redis.call('ZRANGE', KEYS[B + K_DELAYED], 0, 0, 'WITHSCORES')
  redis.call('ZADD', KEYS[B + K_DELAYED], due, id)
  if channel ~= '' and (head[2] == nil or due < tonumber(head[2])) then
    redis.call('PUBLISH', channel, queue)
  end
end

-- A finished job's hash expires after the retention; its index entries are removed by
-- expire.lua using the expiries zset.
-- Drop the unique keys jobs held, once the jobs are gone (expire.lua, purge.lua): fields
-- 'j:<id>' of the queue's unique hash (<prefix>:{q}:unique, see enqueue.lua) name the key
-- of job id, 'k:<key>' the job holding it; a key now held by another job is left to it.
local function drop_unique(unique, ids)
  if not unique or redis.call('EXISTS', unique) == 0 then return end
  for _, id in ipairs(ids) do
    local name = redis.call('HGET', unique, 'j:' .. id)
    if name then
      redis.call('HDEL', unique, 'j:' .. id)
      local raw = redis.call('HGET', unique, 'k:' .. name)
      if raw and string.match(raw, '^(%S+) ') == id then redis.call('HDEL', unique, 'k:' .. name) end
    end
  end
end

local function retain(key, id, ttl_ms, now)
  redis.call('PEXPIRE', key, ttl_ms)
  redis.call('ZADD', KEYS[B + K_EXPIRIES], now + ttl_ms, id)
end

-- Finished jobs per minute, for the dashboard's throughput (shared/store/throughput.py
-- reads it): a ring of THROUGHPUT_SLOTS one-minute slots in one hash per queue. Field
-- 'm:<slot>' is the minute (epoch ms // 60000) the slot counts, 'completed:<slot>' and
-- 'failed:<slot>' its counts; a slot still holding an older minute is reset first, so the
-- hash never grows. Scripts call it once per outcome per batch, not once per job.
local THROUGHPUT_SLOTS = 60
local function count_finished(key, outcome, n, now)
  if n == 0 then return end
  local minute = math.floor(now / 60000)
  local slot = minute % THROUGHPUT_SLOTS
  if redis.call('HGET', key, 'm:' .. slot) ~= tostring(minute) then
    redis.call('HSET', key, 'm:' .. slot, minute, 'completed:' .. slot, 0, 'failed:' .. slot, 0)
  end
  redis.call('HINCRBY', key, outcome .. ':' .. slot, n)
end

-- The job's history (a JSON array of attempts, last HISTORY_LIMIT kept) with one more item.
local function history_with(key, item)
  local raw = redis.call('HGET', key, 'history')
  local h = {}
  if raw then
    local ok, decoded = pcall(cjson.decode, raw)
    if ok and type(decoded) == 'table' then h = decoded end
  end
  h[#h + 1] = item
  while #h > HISTORY_LIMIT do table.remove(h, 1) end
  return cjson.encode(h)
end

-- One history item for the attempt that is ending now.
local function attempt_item(attempts, worker, started_at, now, outcome, err)
  local item = {
    attempt = tonumber(attempts) or 0,
    started_at = tonumber(started_at),
    finished_at = now,
    outcome = outcome,
  }
  if worker then item.worker = worker end
  if err and err ~= '' then item.error = err end
  return item
end
