-- schedule_put: create or replace one periodic schedule (store/schedules.py).
-- KEYS: [1] the schedule's hash, [2] the zset of schedule names by next fire time.
-- ARGV: [1] name, [2] the most schedules there may be, [3] timing (the canonical "when it
--   fires" string), [4] next fire time (epoch ms) computed by the caller from Redis TIME,
--   then field, value pairs of the definition.
-- A replace keeps last_run_at and last_job_id; one that keeps the timing keeps next_run_at,
-- one that changes it fires next at ARGV[4]. Each write increments `version`: the fire script
-- advances a schedule only under the version it planned with.
-- Returns {1 created | 0 replaced, next_run_at, version}, or {-1, count} with nothing
-- written when it is new and `count` schedules exist already (count >= ARGV[2]).
for i, want in ipairs({'hash', 'zset'}) do
  local got = redis.call('TYPE', KEYS[i])['ok']
  if got ~= 'none' and got ~= want then
    return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' holds a ' .. got ..
      ', expected a ' .. want .. '; nothing was written')
  end
end
local name, max, timing, next_run = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local old = redis.call('HMGET', KEYS[1], 'timing', 'next_run_at', 'last_run_at',
  'last_job_id', 'created_at', 'version')
local exists = old[1] ~= false
if not exists then
  local count = redis.call('ZCARD', KEYS[2])
  if count >= max then return {-1, count} end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fields = {'name', name, 'timing', timing, 'updated_at', now}
local version = 1
if exists then
  version = tonumber(old[6] or '0') + 1
  for _, v in ipairs({'created_at', old[5] or now}) do fields[#fields + 1] = v end
  if old[1] == timing and old[2] then next_run = old[2] end
  if old[3] then for _, v in ipairs({'last_run_at', old[3]}) do fields[#fields + 1] = v end end
  if old[4] then for _, v in ipairs({'last_job_id', old[4]}) do fields[#fields + 1] = v end end
else
  for _, v in ipairs({'created_at', now}) do fields[#fields + 1] = v end
end
for _, v in ipairs({'next_run_at', next_run, 'version', version}) do fields[#fields + 1] = v end
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[2], next_run, name)
return {exists and 0 or 1, tonumber(next_run), version}
