-- Library of claim.lua and read_claim.lua (prepended after _lib.lua): start an attempt for
-- one stream entry delivered to this consumer. See claim.lua for the rows it returns and
-- for what the fencing token, `deliveries` and `lost` mean.
--
-- `c`: the claim's settings, from ARGV: consumer, max_deliveries, ttl, defer_last_chance,
-- default_limit, handler_limits, lease_ms, and `paused` (claim.lua: the queue is paused;
-- read_claim.lua reads no paused queue). `fresh`: the entry was delivered by XREADGROUP
-- inside this very script (read_claim.lua), so no other consumer can have taken it over.

-- Whether a job's expires_at (epoch ms, '' or false = none) has passed: it must not start.
local function past_expiry(expires_at, now)
  local at = tonumber(expires_at)
  return at ~= nil and at <= now
end

-- A paused queue's delivered entry goes back: acked, and a new entry at the stream's end;
-- the job is pending again and no attempt is charged (`fields`: what the claim computed so
-- far; only a reclaimed running job's is written, since its lost attempt did happen).
local function hand_back(key, id, entry, status, fields, now)
  local fresh = push(id)
  local out = status == 'running' and fields or {'updated_at', now}
  for _, v in ipairs({'status', 'pending', 'entry', fresh}) do out[#out + 1] = v end
  redis.call('HSET', key, unpack(out))
  redis.call('HDEL', key, 'token', 'worker', 'started_at')
  ack(entry)
  reindex(id, status, 'pending')
  return {'paused', id, entry}
end

local function claim_entry(c, key, entry, id, reclaimed, fresh, now)
  local consumer = c.consumer
  local f = redis.pcall('HMGET', key, 'status', 'entry', 'deliveries', 'attempts', 'worker',
    'started_at', 'type', 'payload', 'timeout_ms', 'correlation_id', 'max_attempts',
    'cancel_requested', 'created_at', 'run_at', 'next_run_at', 'token', 'lost', 'expires_at')
  if f.err then  -- not a hash (claim.lua checks its keys first; read_claim.lua cannot)
    ack(entry)
    return {'skip', id, entry, 'wrongtype'}
  end
  local status = f[1]
  local ready = math.max(tonumber(f[13]) or 0, tonumber(f[14]) or 0, tonumber(f[15]) or 0)
  if status == false or f[2] ~= entry or (status ~= 'pending' and status ~= 'running') then
    ack(entry)
    return {'skip', id, entry, status or 'missing'}
  end
  if not fresh and
      #redis.call('XPENDING', KEYS[B + K_STREAM], GROUP, entry, entry, 1, consumer) == 0 then
    -- Taken over (XAUTOCLAIM) by another consumer since it was delivered to us: it is that
    -- consumer's to start now. Change nothing and leave the entry to its owner.
    return {'skip', id, entry, status}
  end
  if status == 'running' and f[5] == consumer and not reclaimed then
    -- Already ours: this call is being sent again after a lost reply. Change nothing.
    -- (Reclaimed from ourselves instead, it is an attempt this worker lost track of: it
    -- may have run already, so it is counted as lost and a new attempt gets a new token.)
    return {'run', id, entry, f[16], tonumber(f[4]) or 0, f[7], f[8] or '', f[9] or '',
      f[10] or '', f[11] or '', ready, tonumber(f[6]) or now}
  end
  local deliveries = (tonumber(f[3]) or 0) + 1
  local attempts = tonumber(f[4]) or 0
  local lost = tonumber(f[17]) or 0
  if status == 'running' then
    lost = lost + 1  -- its worker stopped renewing the lease: that attempt was lost
  end
  local fields = {'deliveries', deliveries, 'updated_at', now}
  if status == 'running' then
    fields[#fields + 1] = 'lost'
    fields[#fields + 1] = lost
    local why = 'worker ' .. (f[5] or '?') .. ' stopped renewing its lease'
    fields[#fields + 1] = 'history'
    fields[#fields + 1] = history_with(key,
      attempt_item(attempts, f[5], f[6], now, 'lost and reclaimed', why))
  end
  local max_deliveries = c.max_deliveries
  if c.defer_last_chance and lost >= 1 and lost == max_deliveries - 1 and f[12] ~= '1' then
    -- One more lost attempt makes it poison: the worker starts it on its own later (the
    -- entry stays in its PEL, its lease renewed); what was computed above is not written.
    return {'defer', id, entry}
  end
  -- The job ends here without an attempt (`to`: canceled or failed), `more` its fields.
  local function finish_unrun(to, more)
    for _, v in ipairs(more) do fields[#fields + 1] = v end
    redis.call('HSET', key, unpack(fields))
    redis.call('HDEL', key, 'token')
    ack(entry)
    reindex(id, status, to)
    retain(key, id, c.ttl, now)
    limits_release(key, id, now)
  end
  if status == 'running' and f[12] == '1' then
    finish_unrun('canceled', {'status', 'canceled', 'finished_at', now})
    return {'canceled', id, entry}
  end
  if lost >= max_deliveries then
    local err = 'poison: ' .. lost .. ' attempts were lost because their worker stopped ' ..
      'without finishing them (max_deliveries=' .. max_deliveries .. ')'
    finish_unrun('failed', {'status', 'failed', 'last_error', err, 'finished_at', now})
    return {'poison', id, entry}
  end
  if past_expiry(f[18], now) then
    finish_unrun('expired', {'status', 'expired', 'finished_at', now})
    return {'expired', id, entry}
  end
  if c.paused then return hand_back(key, id, entry, status, fields, now) end
  local limited = limits_gate(c, key, id, entry, status, f[7] or '', fields, now)
  if limited then return limited end
  attempts = attempts + 1
  local token = consumer .. ':' .. deliveries
  for _, v in ipairs({'status', 'running', 'attempts', attempts, 'worker', consumer,
      'token', token, 'started_at', now}) do
    fields[#fields + 1] = v
  end
  local limit = c.default_limit and (tonumber(f[11]) or c.handler_limits[f[7]] or c.default_limit)
  if limit then
    fields[#fields + 1] = 'effective_max_attempts'
    fields[#fields + 1] = limit
  end
  redis.call('HSET', key, unpack(fields))
  reindex(id, status, 'running')
  return {'run', id, entry, token, attempts, f[7], f[8] or '', f[9] or '', f[10] or '',
    f[11] or '', ready, now}
end

-- The claim settings every claim takes first: ARGV[1..7] (see claim.lua).
local CLAIM_ARGS = 7
local function claim_settings()
  local default_limit = tonumber(ARGV[5])
  return {
    lease_ms = tonumber(ARGV[7]),
    consumer = ARGV[1],
    max_deliveries = tonumber(ARGV[2]),
    ttl = tonumber(ARGV[3]),
    defer_last_chance = ARGV[4] == '1',
    default_limit = default_limit,
    handler_limits = default_limit and cjson.decode(ARGV[6]) or {},
  }
end
