-- fail: record attempts that raised, timed out or were stopped on request.
-- transition: retry: running -> retrying
-- transition: fail: running -> failed
-- transition: stop_canceled: running -> canceled
-- KEYS: the 12 queue keys, then one job hash per job, then the queue's throughput hash
--   (jobs of the batch that end failed are counted there in one step, see count_finished).
-- ARGV: [1] ttl_ms, [2] schedule channel, [3] queue, then 8 per job:
--   job_id, entry_id, token, error, outcome ('failed' | 'timed out' | 'canceled'),
--   retryable ('1' | '0'), delay_ms (backoff before the next attempt),
--   max_attempts (the worker's effective limit; '' = the job's own, else 1)
-- A job whose cancel was requested ends canceled; a retryable failure with attempts left
-- goes to retrying (due now + delay_ms); anything else ends failed.
-- Returns one status per job: 'retrying' | 'failed' | 'canceled' | 'stale' (see complete.lua).
local ttl, channel, queue = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local bad_type = wrong_key_type()
if bad_type then return bad_type end
local now = now_ms()
local out = {}
local jobs, failed = job_count() - 1, 0
for i = 1, jobs do
  local key, a = KEYS[FIRST_JOB + i - 1], 3 + (i - 1) * 8
  local id, entry, token, err = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local outcome, retryable, delay = ARGV[a + 5], ARGV[a + 6], tonumber(ARGV[a + 7])
  local limit = ARGV[a + 8]
  local f = redis.call('HMGET', key, 'status', 'token', 'attempts', 'max_attempts',
    'cancel_requested', 'worker', 'started_at')
  if f[1] ~= 'running' or f[2] ~= token then
    out[i] = 'stale'
  else
    local status
    if f[5] == '1' then
      status, outcome = 'canceled', 'canceled'
    elseif retryable == '1' and (tonumber(f[3]) or 0) < (tonumber(limit) or tonumber(f[4]) or 1) then
      status = 'retrying'
    else
      status = 'failed'
    end
    local history = history_with(key, attempt_item(f[3], f[6], f[7], now, outcome, err))
    redis.call('HSET', key, 'status', status, 'last_error', err, 'updated_at', now,
      'history', history)
    redis.call('HDEL', key, 'token')
    ack(entry)
    reindex(id, 'running', status)
    if status == 'retrying' then
      local due = now + delay
      redis.call('HSET', key, 'next_run_at', due)
      redis.call('HDEL', key, 'worker', 'started_at')
      schedule(id, due, channel, queue)
    else
      redis.call('HSET', key, 'finished_at', now)
      retain(key, id, ttl, now)
    end
    limits_release(key, id, now)
    out[i] = status
    if status == 'failed' then failed = failed + 1 end
  end
end
count_finished(KEYS[#KEYS], 'failed', failed, now)
return out
