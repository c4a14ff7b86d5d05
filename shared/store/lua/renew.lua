-- renew: extend the lease of entries a worker is running, by resetting their idle time.
-- Checks the PEL owner first: re-claiming with min-idle 0 would otherwise steal an entry
-- that a reclaimer has just taken over.
-- KEYS: the 12 queue keys, then one job hash per job.
-- ARGV: [1] consumer, [2] lease_ms (the renewed deadline of the job's concurrency slots,
--   _limits.lua), then 2 per job: job_id, entry_id
-- Returns one word per job: 'ok', 'cancel' (still ours, and a cancel was requested) or
-- 'lost' (no longer ours: the worker must stop the attempt and not finish it).
local consumer, lease_ms = ARGV[1], tonumber(ARGV[2])
local bad_type = wrong_key_type()
if bad_type then return bad_type end
local now = now_ms()
local out = {}
for i = 1, job_count() do
  local key, entry = KEYS[FIRST_JOB + i - 1], ARGV[2 + 2 * i]
  local owned = redis.call('XPENDING', KEYS[K_STREAM], GROUP, entry, entry, 1, consumer)
  if #owned == 0 then
    out[i] = 'lost'
  else
    redis.call('XCLAIM', KEYS[K_STREAM], GROUP, consumer, 0, entry, 'JUSTID')
    limits_renew(key, ARGV[1 + 2 * i], lease_ms, now)
    if redis.call('HGET', key, 'cancel_requested') == '1' then
      out[i] = 'cancel'
    else
      out[i] = 'ok'
    end
  end
end
return out
