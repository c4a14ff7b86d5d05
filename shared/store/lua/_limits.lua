-- Library of the scripts that start or end attempts (prepended after _lib.lua, and after
-- _claim.lua where both are used): concurrency and rate limits per limit key (ADR 0017).
--
-- A job is subject to the limits configured for `queue`, for `type:<its type>` and for its
-- own `limit_key` (when it has one). Keys derived here from the queue's stream key (so they
-- share its {hash tag} and Cluster slot), with base = '<prefix>:{<queue>}:':
--   base..'limits'          hash: limit key -> JSON {"max_running"?, "max_per_second"?,
--                           "burst"?} (shared/store/limits.py writes it)
--   base..'slots:<key>'     zset: ids of the jobs holding a running slot, score = the
--                           attempt's lease deadline (epoch ms), extended by renew.lua
--   base..'held:<key>'      zset: ids of pending jobs waiting for a slot, score = since when
--   base..'rate:<key>'      string: GCRA theoretical arrival time (epoch ms, Redis TIME),
--                           expires once it lies in the past
-- In the job hash: `slots` (the limit keys whose slot it holds, space-separated), `held`
-- (the key it waits for), `rate_slot` (the start time it reserved when it was delayed by a
-- rate limit; that start is paid, so the claim that follows does not charge it again).
local LIMITS_WAKE = 10  -- held jobs moved back onto the stream per key per call, at most
local LIMITS_DRAIN = 200  -- the same, per sweep, for a key whose limit was removed

local function limits_base()
  local stream = KEYS[B + K_STREAM]
  return string.sub(stream, 1, #stream - 6)  -- '<base>stream' -> '<base>'
end

local limits_cache = {}

-- The queue's limits (limit key -> its settings), or false when none is configured; read
-- once per queue per script call. `strict`: a limits key of another type raises (the
-- claim reads it before its first write); otherwise it counts as no limits, so a script
-- that ends attempts never fails halfway on it.
local function limits_of(base, strict)
  local conf = limits_cache[base]
  if conf ~= nil then return conf end
  local raw = strict and redis.call('HGETALL', base .. 'limits') or
    redis.pcall('HGETALL', base .. 'limits')
  conf = false
  if type(raw) == 'table' and not raw.err and #raw > 0 then
    conf = {}
    for i = 1, #raw, 2 do
      local ok, v = pcall(cjson.decode, raw[i + 1])
      if ok and type(v) == 'table' then conf[raw[i]] = v end
    end
  end
  limits_cache[base] = conf
  return conf
end

-- The claim scripts read the limits of each of their `queues` queues before they write.
local function limits_load(queues)
  for q = 1, queues do
    local stream = KEYS[(q - 1) * QUEUE_KEYS + K_STREAM]
    limits_of(string.sub(stream, 1, #stream - 6), true)
  end
end

-- Move up to LIMITS_WAKE held jobs of limit key `name` back onto the stream, as many as it
-- has free slots (all of them, within the bound, when the key has no concurrency limit any
-- more; `most` instead of LIMITS_WAKE when given). Slots whose lease ran out are dropped
-- first. Never raises on a key of another type.
local function limits_wake(base, name, now, most)
  local conf = limits_of(base, false)
  local l = conf and conf[name]
  local room = most or LIMITS_WAKE
  if l and tonumber(l.max_running) then
    local slots = base .. 'slots:' .. name
    redis.pcall('ZREMRANGEBYSCORE', slots, '-inf', now)
    local used = redis.pcall('ZCARD', slots)
    room = math.min(room, tonumber(l.max_running) - (tonumber(used) or 0))
  end
  local held, moved, tries = base .. 'held:' .. name, 0, 0
  while moved < room and tries < 2 * (most or LIMITS_WAKE) do
    tries = tries + 1
    local top = redis.pcall('ZPOPMIN', held)
    if type(top) ~= 'table' or top.err or not top[1] then break end
    local id = top[1]
    local job = base .. 'job:' .. id
    local f = redis.pcall('HMGET', job, 'status', 'held')
    if type(f) == 'table' and not f.err and f[1] == 'pending' and f[2] == name then
      redis.call('HSET', job, 'entry', push(id))
      redis.call('HDEL', job, 'held')
      moved = moved + 1
    end
  end
  return moved
end

-- The job's attempt ended or was handed back: free the slots it holds and start held jobs.
-- With no limit configured this costs one HGET.
local function limits_release(key, id, now)
  local held_slots = redis.call('HGET', key, 'slots')
  if not held_slots then return end
  local base = limits_base()
  redis.call('HDEL', key, 'slots')
  for name in string.gmatch(held_slots, '%S+') do
    redis.pcall('ZREM', base .. 'slots:' .. name, id)
    limits_wake(base, name, now)
  end
end

-- A pending job leaves before it started (cancel): it no longer waits for a slot.
local function limits_forget(key, id)
  local name = redis.call('HGET', key, 'held')
  if not name then return end
  redis.call('HDEL', key, 'held')
  redis.pcall('ZREM', limits_base() .. 'held:' .. name, id)
end

-- The lease of a running job was renewed: so is its slots' deadline.
local function limits_renew(key, id, lease_ms, now)
  local held_slots = redis.call('HGET', key, 'slots')
  if not held_slots then return end
  local base = limits_base()
  for name in string.gmatch(held_slots, '%S+') do
    redis.pcall('ZADD', base .. 'slots:' .. name, 'XX', now + lease_ms, id)
  end
end

-- The GCRA state of a rate limit `l` at `now`: the theoretical arrival time (never before
-- now), the emission interval and the earliest start that conforms.
local function limits_gcra(rate_key, l, now)
  local interval = 1000 / tonumber(l.max_per_second)
  local tolerance = interval * math.max((tonumber(l.burst) or 1) - 1, 0)
  local tat = math.max(tonumber(redis.call('GET', rate_key)) or now, now)
  return tat, interval, tat - tolerance
end

-- Decide whether the claim of one job may start its attempt now (claim_entry calls it for
-- a job about to start). Returns nil when it may: its slots are taken and its rate charged
-- (`fields`, the job's pending HSET, gets its `slots`). Otherwise the job's entry is acked
-- and the returned row says what happened, all uncharged (attempts and deliveries as they
-- were; for a reclaimed job only its lost attempt is recorded, from `fields`):
--   {'held', id, entry, limit_key}      full: it waits, pending, in held:<limit_key>
--   {'limited', id, entry, due_ms}      over a rate: scheduled for its reserved start
--   {'skip', id, entry, 'wrongtype'}    a limit key of another type: nothing written, the
--                                       entry left in the PEL
local function limits_gate(c, key, id, entry, status, job_type, fields, now)
  local base = limits_base()
  local conf = limits_of(base, true)
  if not conf then return nil end
  local f = redis.call('HMGET', key, 'limit_key', 'rate_slot', 'slots', 'held')
  local names = {'queue', 'type:' .. job_type}
  if f[1] then names[3] = f[1] end
  local conc, rates = {}, {}
  for _, name in ipairs(names) do
    local l = conf[name]
    if l and tonumber(l.max_running) then
      local slots, held = base .. 'slots:' .. name, base .. 'held:' .. name
      for _, k in ipairs({slots, held}) do
        local t = redis.call('TYPE', k)['ok']
        if t ~= 'none' and t ~= 'zset' then return {'skip', id, entry, 'wrongtype'} end
      end
      conc[#conc + 1] = {name, tonumber(l.max_running), slots, held}
    end
    if l and tonumber(l.max_per_second) and not f[2] then
      local rate_key = base .. 'rate:' .. name
      local t = redis.call('TYPE', rate_key)['ok']
      if t ~= 'none' and t ~= 'string' then return {'skip', id, entry, 'wrongtype'} end
      rates[#rates + 1] = {rate_key, l}
    end
  end
  if #conc == 0 and #rates == 0 and not (f[2] or f[3] or f[4]) then return nil end
  -- The job stops here without an attempt: record what the claim found (a reclaimed
  -- job's lost attempt), give back what it held, and acknowledge its entry.
  local function stop(to, more)
    if status == 'running' then
      redis.call('HSET', key, unpack(fields))
      redis.call('HDEL', key, 'token', 'worker', 'started_at')
    end
    for _, v in ipairs({'updated_at', now, 'status', to}) do more[#more + 1] = v end
    redis.call('HSET', key, unpack(more))
    ack(entry)
    reindex(id, status, to)
    if f[3] then limits_release(key, id, now) end
  end
  for _, l in ipairs(conc) do
    local name, max, slots, held = l[1], l[2], l[3], l[4]
    redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
    if not redis.call('ZSCORE', slots, id) and redis.call('ZCARD', slots) >= max then
      stop('pending', {'held', name})
      redis.call('ZADD', held, 'NX', now, id)
      return {'held', id, entry, name}
    end
  end
  local start = now
  local plan = {}
  for i, r in ipairs(rates) do
    local tat, interval, earliest = limits_gcra(r[1], r[2], now)
    plan[i] = {tat, interval}
    start = math.max(start, earliest)
  end
  for i, r in ipairs(rates) do
    local tat = math.max(plan[i][1], start) + plan[i][2]
    redis.call('SET', r[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1)
  end
  if start > now then
    local due = math.ceil(start)
    stop('scheduled', {'rate_slot', due})
    local prefix, queue = string.match(base, '^(.*):{(.*)}:$')
    schedule(id, due, prefix .. ':schedule', queue)
    return {'limited', id, entry, due}
  end
  local taken, keep = {}, {}
  for _, l in ipairs(conc) do
    redis.call('ZADD', l[3], now + c.lease_ms, id)
    taken[#taken + 1] = l[1]
    keep[l[1]] = true
  end
  if f[3] then  -- a reclaimed job: slots of keys no longer limited are freed
    for name in string.gmatch(f[3], '%S+') do
      if not keep[name] then
        redis.call('ZREM', base .. 'slots:' .. name, id)
        limits_wake(base, name, now)
      end
    end
  end
  if f[2] or f[4] then redis.call('HDEL', key, 'rate_slot', 'held') end
  if #taken > 0 then
    fields[#fields + 1] = 'slots'
    fields[#fields + 1] = table.concat(taken, ' ')
  elseif f[3] then
    redis.call('HDEL', key, 'slots')
  end
  return nil
end

-- The scheduler's sweep of one queue (limits_sweep.lua): for every key with a concurrency
-- limit, drop slots whose lease ran out and start held jobs for the free ones (a slot is
-- otherwise freed by the script that ends its attempt; this covers a worker that died);
-- for every removed key still draining (limits_delete.lua), start up to LIMITS_DRAIN of
-- its held jobs, and forget the key once none is left.
local function limits_sweep(now)
  local base = limits_base()
  local conf = limits_of(base, false)
  local moved = 0
  if not conf then return 0 end
  for name, l in pairs(conf) do
    if tonumber(l.max_running) then
      moved = moved + limits_wake(base, name, now)
    elseif l.draining then
      moved = moved + limits_wake(base, name, now, LIMITS_DRAIN)
      if (tonumber(redis.pcall('ZCARD', base .. 'held:' .. name)) or 0) == 0 then
        redis.call('HDEL', base .. 'limits', name)
      end
    end
  end
  return moved
end
