-- claim: a worker starts an attempt for each stream entry delivered to it, fresh (XREADGROUP)
-- or taken over from a worker that stopped renewing its lease (XAUTOCLAIM).
-- transition: claim: pending -> running
-- transition: reclaim: running -> running
-- transition: poison: running -> failed
-- transition: stop_canceled: running -> canceled
-- KEYS: the 11 queue keys, then the job hash of each entry.
-- ARGV: [1] consumer, [2] max_deliveries, [3] ttl_ms, [4] defer_last_chance ('1': defer a job
--   whose next lost attempt would make it poison, see below; '0': start it),
--   [5] the worker's default max_attempts ('' = record no effective limit), [6] a JSON
--   object of job type -> its handler's max_attempts (handlers that set one), then 3 per
--   entry: entry_id, job_id, reclaimed ('1': taken over with XAUTOCLAIM, '0': delivered by
--   XREADGROUP)
-- An attempt started records `effective_max_attempts`: the limit the worker judges it by
-- (the job's own max_attempts, else its handler's, else the worker's default; the same
-- order as worker/retry.py effective_max_attempts), so a reader sees how many remain.
-- Returns one list per entry:
--   {'run', job_id, entry_id, token, attempts, type, payload, timeout_ms, correlation_id,
--    max_attempts, ready_at_ms, started_at_ms}   (timeout_ms, correlation_id, max_attempts:
--    '' = not set; ready and started both by Redis TIME, for the wait metric)
--   {'skip', job_id, entry_id, status}   entry acked: job gone, finished, or not its entry;
--                                        or, not acked, another consumer holds the entry now
--   {'poison', job_id, entry_id}         failed: its attempts were lost max_deliveries times
--   {'canceled', job_id, entry_id}       reclaimed while a cancel was requested
--   {'defer', job_id, entry_id}          nothing written: its job has lost max_deliveries - 1
--                                        attempts (counting this takeover), and the worker
--                                        asked to start such a job only on its own, with
--                                        nothing else running beside it (worker/last_chance.py)
-- The fencing token (consumer:deliveries) is what complete/fail/requeue must present;
-- `deliveries` only grows, so a token is never issued twice. `lost` counts attempts whose
-- worker stopped renewing the lease; reaching max_deliveries makes the job poison. Retries
-- after a recorded failure and hand-backs at shutdown do not count.
local consumer, max_deliveries, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local defer_last_chance = ARGV[4] == '1'
local default_limit = tonumber(ARGV[5])
local handler_limits = default_limit and cjson.decode(ARGV[6]) or {}
local ENTRY_ARGS = 6  -- the arguments before the first entry's
local bad_type = wrong_key_type()
if bad_type then return bad_type end
local now = now_ms()
local out = {}
for i = 1, job_count() do
  local a = ENTRY_ARGS + 3 * (i - 1)
  local key, entry, id = KEYS[FIRST_JOB + i - 1], ARGV[a + 1], ARGV[a + 2]
  local reclaimed = ARGV[a + 3] == '1'
  local f = redis.call('HMGET', key, 'status', 'entry', 'deliveries', 'attempts', 'worker',
    'started_at', 'type', 'payload', 'timeout_ms', 'correlation_id', 'max_attempts',
    'cancel_requested', 'created_at', 'run_at', 'next_run_at', 'token', 'lost')
  local status = f[1]
  local ready = math.max(tonumber(f[13]) or 0, tonumber(f[14]) or 0, tonumber(f[15]) or 0)
  if status == false or f[2] ~= entry or (status ~= 'pending' and status ~= 'running') then
    ack(entry)
    out[i] = {'skip', id, entry, status or 'missing'}
  elseif #redis.call('XPENDING', KEYS[K_STREAM], GROUP, entry, entry, 1, consumer) == 0 then
    -- Taken over (XAUTOCLAIM) by another consumer since it was delivered to us: it is that
    -- consumer's to start now. Change nothing and leave the entry to its owner.
    out[i] = {'skip', id, entry, status}
  elseif status == 'running' and f[5] == consumer and not reclaimed then
    -- Already ours: this call is being sent again after a lost reply. Change nothing.
    -- (Reclaimed from ourselves instead, it is an attempt this worker lost track of: it
    -- may have run already, so it is counted as lost and a new attempt gets a new token.)
    out[i] = {'run', id, entry, f[16], tonumber(f[4]) or 0, f[7], f[8] or '', f[9] or '',
      f[10] or '', f[11] or '', ready, tonumber(f[6]) or now}
  else
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
    if defer_last_chance and lost >= 1 and lost == max_deliveries - 1 and f[12] ~= '1' then
      -- One more lost attempt makes it poison: the worker starts it on its own later (the
      -- entry stays in its PEL, its lease renewed); what was computed above is not written.
      out[i] = {'defer', id, entry}
    elseif status == 'running' and f[12] == '1' then
      for _, v in ipairs({'status', 'canceled', 'finished_at', now}) do fields[#fields + 1] = v end
      redis.call('HSET', key, unpack(fields))
      redis.call('HDEL', key, 'token')
      ack(entry)
      reindex(id, status, 'canceled')
      retain(key, id, ttl, now)
      out[i] = {'canceled', id, entry}
    elseif lost >= max_deliveries then
      local err = 'poison: ' .. lost .. ' attempts were lost because their worker stopped ' ..
        'without finishing them (max_deliveries=' .. max_deliveries .. ')'
      for _, v in ipairs({'status', 'failed', 'last_error', err, 'finished_at', now}) do
        fields[#fields + 1] = v
      end
      redis.call('HSET', key, unpack(fields))
      redis.call('HDEL', key, 'token')
      ack(entry)
      reindex(id, status, 'failed')
      retain(key, id, ttl, now)
      out[i] = {'poison', id, entry}
    else
      attempts = attempts + 1
      local token = consumer .. ':' .. deliveries
      for _, v in ipairs({'status', 'running', 'attempts', attempts, 'worker', consumer,
          'token', token, 'started_at', now}) do
        fields[#fields + 1] = v
      end
      local limit = default_limit and (tonumber(f[11]) or handler_limits[f[7]] or default_limit)
      if limit then
        fields[#fields + 1] = 'effective_max_attempts'
        fields[#fields + 1] = limit
      end
      redis.call('HSET', key, unpack(fields))
      reindex(id, status, 'running')
      out[i] = {'run', id, entry, token, attempts, f[7], f[8] or '', f[9] or '', f[10] or '',
        f[11] or '', ready, now}
    end
  end
end
return out
