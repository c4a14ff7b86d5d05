-- enqueue: create jobs in one queue atomically: hash + indexes + stream entry (or delayed),
-- and the idempotency keys the jobs claim.
-- transition: create: new -> pending scheduled
-- KEYS: the 12 queue keys, then one job hash per job (n), then 2 per idempotency key (m):
--   the idempotency key (a string "<job_id> <fingerprint>"), and the hash of the job that
--   key named when the caller read it (any job hash of the queue when it was unused);
--   then the queue's tombstone (<prefix>:{q}:retired, a string: see retire.lua);
--   then the queue's unique keys (<prefix>:{q}:unique, a hash: see below), then 1 per unique
--   key (u): the hash of the job that key named when the caller read it (any job hash of
--   the queue when it was free).
-- ARGV: [1] queue name, [2] schedule channel, [3] n, [4] idempotency ttl_ms, [5] m,
--   then PER_JOB (13) per job:
--   id, type, payload (msgpack), max_attempts, timeout_ms, correlation_id (each '' = not set:
--   the worker then applies the handler's or its own default),
--   due ('' = now; an absolute epoch ms, in the past meaning now; or '+<ms>': that many ms
--   after this script's Redis TIME, so that a delay does not depend on the caller's clock),
--   key (1..m: which idempotency key the job uses; '' = none), fingerprint ('' = none),
--   expires ('' = never; an absolute epoch ms, or '+<ms>' after this script's Redis TIME:
--   the job never starts after it, see _claim.lua and promote.lua; stored as expires_at);
--   limit_key ('' = none: the job counts only under its queue's and its type's limits);
--   unique ('<s> <unique_for_ms>': the job uses unique key s (1..u), kept that long after
--   the job finished; '' = none);
--   schedule (the periodic schedule that fired the job; '' = none);
--   then 1 per idempotency key: the job id the caller read from it ('' = it was unused);
--   then the queue's registration generation (register.lua);
--   then u, and 2 per unique key: its name, the job id the caller read from it ('' = free).
-- Unique keys: field 'k:<name>' of the unique hash holds '<job_id> <unique_for_ms>', field
-- 'j:<job_id>' the name back (expire.lua and purge.lua drop both with the job). A key is
-- held while its job is not finished (its hash has no finished_at) and for unique_for_ms
-- after finished_at; a job that is gone, or finished longer ago, leaves the key free.
-- Returns {now_ms, row_1, ..., row_n}, one row per job:
--   {'created', status}  created now (pending or scheduled)
--   {'exists', job_id}   its id already exists: left as it is (see below)
--   {'repeat', job_id}   its idempotency key names this job with the same fingerprint
--                        (an earlier call, or an earlier job of this batch): nothing created
--   {'unique', job_id}   its unique key is held by this job: nothing created (its
--                        idempotency key, if any, now names that job)
-- or, with nothing written:
--   {-1, i}          job i repeats an id of the same batch
--   {-2, i, job_id}  job i's idempotency key belongs to job_id with another fingerprint
--   {-3, k}          idempotency key k no longer names the job the caller read: read again
--   {-4}             the queue left the registry under this generation (its tombstone
--                    names it or a later one): register it again, then call again
--   {-5, s}          unique key s no longer names the job the caller read: read again
--   a WRONGTYPE error when one of the keys holds another type.
-- A key whose job hash is gone (retention shorter than the key's ttl) counts as unused.
-- A job whose id already exists is left as it is and reported: ids carry 80 random bits,
-- so an existing id means this very call is being sent again (a client retry after a lost
-- reply), and creating nothing is the right answer.
local queue, channel = ARGV[1], ARGV[2]
local n, idem_ttl, m = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local FIRST_IDEM = FIRST_JOB + n
local PER_JOB = 13  -- the arguments of each job
local SLOTS = 5 + PER_JOB * n  -- ARGV[SLOTS + k] = the job id the caller read from key k
local function argv(i, j) return ARGV[5 + (i - 1) * PER_JOB + j] end
-- A time argument ('' = none, epoch ms, or '+<ms>' after `now`) as epoch ms, or nil.
local function at_ms(arg, now)
  if string.sub(arg, 1, 1) == '+' then return now + tonumber(string.sub(arg, 2)) end
  return tonumber(arg)
end
local K_TOMB = FIRST_IDEM + 2 * m
local K_UNIQUE = K_TOMB + 1  -- then KEYS[K_UNIQUE + s]: the hash of unique key s's holder
local U_ARGS = SLOTS + m + 2  -- ARGV[U_ARGS] = u, then name and holder read of each key
local u = tonumber(ARGV[U_ARGS]) or 0
-- A create touches the stream, the delayed set and the all/scheduled/pending indexes of
-- the queue keys, never the running to expired indexes nor the expiries.
-- A call whose jobs are all due now does not touch the delayed set nor the scheduled index.
local UNTOUCHED = {[INDEX.running] = true, [INDEX.retrying] = true, [INDEX.completed] = true,
  [INDEX.failed] = true, [INDEX.canceled] = true, [K_EXPIRIES] = true, [INDEX.expired] = true}
local delayed = false
for i = 1, n do
  if argv(i, 7) ~= '' then delayed = true end
end
if not delayed then
  UNTOUCHED[K_DELAYED] = true
  UNTOUCHED[INDEX.scheduled] = true
end
if u == 0 then UNTOUCHED[K_UNIQUE] = true end
local bad_type = wrong_key_type(function(i)
  if i >= FIRST_IDEM and i <= K_TOMB and (i - FIRST_IDEM) % 2 == 0 then return 'string' end
  return nil
end, UNTOUCHED)
if bad_type then return bad_type end
-- A tombstone at or above our generation: the registration we hold was retired (the queue
-- was empty and is leaving, or has left, the registry), so no job may be written under it.
local tomb = redis.call('GET', KEYS[K_TOMB])
if tomb and tonumber(tomb) >= tonumber(ARGV[SLOTS + m + 1]) then return {-4} end
local seen = {}
for i = 1, n do
  local id = argv(i, 1)
  if seen[id] then return {-1, i} end
  seen[id] = true
  for _, t in ipairs({{7, 'due time'}, {10, 'expiry'}}) do
    local v = argv(i, t[1])
    if v ~= '' and not tonumber(string.sub(v, 1, 1) == '+' and string.sub(v, 2) or v) then
      return redis.error_reply('ERR job ' .. i .. ' has a malformed ' .. t[2] ..
        '; nothing was written')
    end
  end
end

-- Read every idempotency key: owner[k] = {id, fingerprint} of the job holding key k.
local owner = {}
for k = 1, m do
  local raw = redis.call('GET', KEYS[FIRST_IDEM + 2 * (k - 1)])
  if raw then
    local id, fp = string.match(raw, '^(%S+) (%S*)$')
    if id == nil or id ~= ARGV[SLOTS + k] then return {-3, k} end
    if redis.call('EXISTS', KEYS[FIRST_IDEM + 2 * (k - 1) + 1]) == 1 then
      owner[k] = {id, fp}
    end
  end
end

local now = now_ms()
-- Read every unique key: holder[s] = the id of the job holding unique key s now (nil: free).
local holder, previous = {}, {}
for s = 1, u do
  local raw = redis.call('HGET', KEYS[K_UNIQUE], 'k:' .. ARGV[U_ARGS + 2 * s - 1])
  local id, for_ms
  if raw then id, for_ms = string.match(raw, '^(%S+) (%d+)$') end
  if (id or '') ~= ARGV[U_ARGS + 2 * s] then return {-5, s} end
  previous[s] = id
  if id then
    local h = redis.call('HMGET', KEYS[K_UNIQUE + s], 'status', 'finished_at')
    if h[1] and (not h[2] or now < tonumber(h[2]) + tonumber(for_ms)) then holder[s] = id end
  end
end

-- Decide each job before writing anything.
local plan, claimed, taken, held_by = {}, {}, {}, {}
for i = 1, n do
  local k, fp = tonumber(argv(i, 8)), argv(i, 9)
  local s, for_ms = string.match(argv(i, 12), '^(%d+) (%d+)$')
  s = tonumber(s)
  local o = k and owner[k]
  if o then
    if o[2] ~= fp then return {-2, i, o[1]} end
    -- The key names this very job: the call is being sent again (see below).
    if o[1] == argv(i, 1) then plan[i] = 'exists' else plan[i] = 'repeat' end
  else
    local named = argv(i, 1)
    if redis.call('EXISTS', KEYS[FIRST_JOB + i - 1]) == 1 then
      plan[i] = 'exists'
    elseif s and holder[s] then
      plan[i] = 'unique'
      named = holder[s]
      held_by[i] = named
    else
      plan[i] = 'create'
      if s then
        holder[s] = named
        taken[#taken + 1] = {s, named, for_ms}
      end
    end
    if k then
      owner[k] = {named, fp}
      claimed[#claimed + 1] = k
    end
  end
end

-- Write one new job from its ARGV (job i); returns its status.
local function create(key, i)
  local id, due = argv(i, 1), at_ms(argv(i, 7), now)
  local fields = {
    'id', id, 'type', argv(i, 2), 'queue', queue, 'payload', argv(i, 3),
    'attempts', 0, 'deliveries', 0, 'created_at', now, 'updated_at', now,
  }
  for j, name in ipairs({'max_attempts', 'timeout_ms', 'correlation_id'}) do
    if argv(i, 3 + j) ~= '' then
      fields[#fields + 1] = name
      fields[#fields + 1] = argv(i, 3 + j)
    end
  end
  local expires_at = at_ms(argv(i, 10), now)
  if expires_at then
    fields[#fields + 1] = 'expires_at'
    fields[#fields + 1] = expires_at
  end
  if argv(i, 11) ~= '' then
    fields[#fields + 1] = 'limit_key'
    fields[#fields + 1] = argv(i, 11)
  end
  if argv(i, 13) ~= '' then
    fields[#fields + 1] = 'schedule'
    fields[#fields + 1] = argv(i, 13)
  end
  local status
  if due and due > now then
    status = 'scheduled'
    for _, v in ipairs({'status', status, 'run_at', due}) do fields[#fields + 1] = v end
    redis.call('HSET', key, unpack(fields))
    schedule(id, due, channel, queue)
  else
    status = 'pending'
    local entry = push(id)
    for _, v in ipairs({'status', status, 'entry', entry}) do fields[#fields + 1] = v end
    redis.call('HSET', key, unpack(fields))
  end
  redis.call('ZADD', KEYS[K_ALL], 0, id)
  reindex(id, nil, status)
  return status
end

-- An older tombstone: the name was registered again since it left; forget it.
if tomb then redis.call('DEL', KEYS[K_TOMB]) end
local out = {now}
for i = 1, n do
  local k = tonumber(argv(i, 8))
  if plan[i] == 'create' then
    out[#out + 1] = {'created', create(KEYS[FIRST_JOB + i - 1], i)}
  elseif plan[i] == 'exists' then
    out[#out + 1] = {'exists', argv(i, 1)}
  elseif plan[i] == 'unique' then
    out[#out + 1] = {'unique', held_by[i]}
  else
    out[#out + 1] = {'repeat', owner[k][1]}
  end
end
for _, k in ipairs(claimed) do
  redis.call('SET', KEYS[FIRST_IDEM + 2 * (k - 1)], owner[k][1] .. ' ' .. owner[k][2], 'PX',
    idem_ttl)
end
for _, t in ipairs(taken) do
  local s, id, for_ms = t[1], t[2], t[3]
  local name = ARGV[U_ARGS + 2 * s - 1]
  if previous[s] then redis.call('HDEL', KEYS[K_UNIQUE], 'j:' .. previous[s]) end
  redis.call('HSET', KEYS[K_UNIQUE], 'k:' .. name, id .. ' ' .. for_ms, 'j:' .. id, name)
end
return out
