-- complete: record the result of attempts that succeeded.
-- transition: complete: running -> completed
-- KEYS: the 12 queue keys, then one job hash per job, then the queue's throughput hash
--   (the batch's completions are counted there in one step, see count_finished).
-- ARGV: [1] ttl_ms, then 4 per job: job_id, entry_id, token, result (msgpack)
-- Returns one status per job: 'completed', or 'stale' when the job is no longer running
-- under this token (it was reclaimed, canceled or finished by someone else): nothing is
-- written and the entry is not acknowledged, because it is no longer ours.
local ttl = tonumber(ARGV[1])
local bad_type = wrong_key_type()
if bad_type then return bad_type end
local now = now_ms()
local out = {}
local jobs, done = job_count() - 1, 0
for i = 1, jobs do
  local key, a = KEYS[FIRST_JOB + i - 1], 1 + (i - 1) * 4
  local id, entry, token, result = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local f = redis.call('HMGET', key, 'status', 'token', 'attempts', 'worker', 'started_at')
  if f[1] ~= 'running' or f[2] ~= token then
    out[i] = 'stale'
  else
    local history = history_with(key, attempt_item(f[3], f[4], f[5], now, 'completed', nil))
    redis.call('HSET', key, 'status', 'completed', 'result', result, 'finished_at', now,
      'updated_at', now, 'history', history)
    redis.call('HDEL', key, 'token')
    ack(entry)
    reindex(id, 'running', 'completed')
    retain(key, id, ttl, now)
    limits_release(key, id, now)
    out[i] = 'completed'
    done = done + 1
  end
end
count_finished(KEYS[#KEYS], 'completed', done, now)
return out
