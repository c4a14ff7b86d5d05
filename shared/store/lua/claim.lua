-- claim: a worker starts an attempt for each stream entry delivered to it, fresh (XREADGROUP)
-- or taken over from a worker that stopped renewing its lease (XAUTOCLAIM).
-- transition: claim: pending -> running
-- transition: reclaim: running -> running
-- transition: poison: running -> failed
-- transition: stop_canceled: running -> canceled
-- transition: expire: pending running -> expired
-- transition: hand_back: pending running -> pending
-- transition: hold: pending running -> pending
-- transition: rate_limit: pending running -> scheduled
-- KEYS: the 12 queue keys, then the job hash of each entry, then last the queue's pause flag
--   (<prefix>:{q}:paused, a string).
-- ARGV: [1] consumer, [2] max_deliveries, [3] ttl_ms, [4] defer_last_chance ('1': defer a job
--   whose next lost attempt would make it poison, see below; '0': start it),
--   [5] the worker's default max_attempts ('' = record no effective limit), [6] a JSON
--   object of job type -> its handler's max_attempts (handlers that set one), [7] lease_ms
--   (how long a concurrency slot is held without a renewal, _limits.lua), then 3 per
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
--   {'expired', job_id, entry_id}        ended unrun: its expires_at (Redis TIME) has passed
--   {'paused', job_id, entry_id}         the queue is paused: the entry was handed back (a
--                                        new entry at the stream's end), the job pending
--                                        and nothing charged
--   {'held', job_id, entry_id, limit_key}  acked, not started, uncharged: the key's
--                                        concurrency limit is full; waits in its held set
--   {'limited', job_id, entry_id, due_ms}  acked, not started, uncharged: over a rate
--                                        limit, scheduled for its reserved start
--   {'defer', job_id, entry_id}          nothing written: its job has lost max_deliveries - 1
--                                        attempts (counting this takeover), and the worker
--                                        asked to start such a job only on its own, with
--                                        nothing else running beside it (worker/last_chance.py)
-- The fencing token (consumer:deliveries) is what complete/fail/requeue must present;
-- `deliveries` only grows, so a token is never issued twice. `lost` counts attempts whose
-- worker stopped renewing the lease; reaching max_deliveries makes the job poison. Retries
-- after a recorded failure and hand-backs at shutdown do not count.
-- The work per entry is claim_entry (_claim.lua), shared with read_claim.lua.
local c = claim_settings()
local ENTRY_ARGS = CLAIM_ARGS  -- the arguments before the first entry's
local K_PAUSED = #KEYS
local bad_type = wrong_key_type(function(i) if i == K_PAUSED then return 'string' end end)
if bad_type then return bad_type end
c.paused = redis.call('EXISTS', KEYS[K_PAUSED]) == 1
limits_load(1)
local now = now_ms()
local out = {}
for i = 1, job_count() - 1 do
  local a = ENTRY_ARGS + 3 * (i - 1)
  out[i] = claim_entry(c, KEYS[FIRST_JOB + i - 1], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3] == '1',
    false, now)
end
return out
