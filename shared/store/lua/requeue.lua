-- requeue: graceful shutdown hands running jobs back: a new stream entry, the old one
-- acknowledged, the attempt not charged (`deliveries` keeps counting: tokens stay unique).
-- transition: requeue: running -> pending
-- transition: stop_canceled: running -> canceled
-- KEYS: the 12 queue keys, then one job hash per job.
-- ARGV: [1] ttl_ms, then 3 per job: job_id, entry_id, token
-- Returns one status per job: 'pending', 'canceled' (a cancel was requested meanwhile) or
-- 'stale' (see complete.lua).
local ttl = tonumber(ARGV[1])
local bad_type = wrong_key_type()
if bad_type then return bad_type end
local now = now_ms()
local out = {}
for i = 1, job_count() do
  local key, a = KEYS[FIRST_JOB + i - 1], 1 + (i - 1) * 3
  local id, entry, token = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local f = redis.call('HMGET', key, 'status', 'token', 'attempts', 'cancel_requested',
    'worker', 'started_at')
  if f[1] ~= 'running' or f[2] ~= token then
    out[i] = 'stale'
  elseif f[4] == '1' then
    local history = history_with(key, attempt_item(f[3], f[5], f[6], now, 'canceled',
      'canceled during shutdown'))
    redis.call('HSET', key, 'status', 'canceled', 'finished_at', now, 'updated_at', now,
      'history', history)
    redis.call('HDEL', key, 'token')
    ack(entry)
    reindex(id, 'running', 'canceled')
    retain(key, id, ttl, now)
    limits_release(key, id, now)
    out[i] = 'canceled'
  else
    local history = history_with(key, attempt_item(f[3], f[5], f[6], now,
      'returned at shutdown', nil))
    local attempts = math.max((tonumber(f[3]) or 1) - 1, 0)
    local fresh = push(id)
    redis.call('HSET', key, 'status', 'pending', 'entry', fresh, 'attempts', attempts,
      'updated_at', now, 'history', history)
    redis.call('HDEL', key, 'token', 'worker', 'started_at')
    ack(entry)
    reindex(id, 'running', 'pending')
    limits_release(key, id, now)
    out[i] = 'pending'
  end
end
return out
