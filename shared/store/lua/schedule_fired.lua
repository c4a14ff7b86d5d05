-- schedule_fired: record that a scheduler handled a schedule's due fire times (worker/
-- periodic.py): the jobs are created (or found existing) before this runs.
-- KEYS: [1] the schedule's hash, [2] the zset of schedule names by next fire time.
-- ARGV: [1] name, [2] the next_run_at the scheduler planned from, [3] the version it read,
--   [4] the new next_run_at, [5] last_run_at ('' = unchanged), [6] last_job_id ('' =
--   unchanged).
-- A compare-and-set: only when next_run_at and version are still those the scheduler read,
-- so two replicas handling the same fire never both advance it, and a schedule replaced
-- or deleted meanwhile is left as it is. Returns 1 when advanced, 0 when not.
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then return 0 end
local zset_type = redis.call('TYPE', KEYS[2])['ok']
if zset_type ~= 'none' and zset_type ~= 'zset' then
  return redis.error_reply('WRONGTYPE ' .. KEYS[2] .. ' holds a ' .. zset_type ..
    ', expected a zset; nothing was written')
end
local cur = redis.call('HMGET', KEYS[1], 'next_run_at', 'version')
if cur[1] ~= ARGV[2] or cur[2] ~= ARGV[3] then return 0 end
local fields = {'next_run_at', ARGV[4]}
if ARGV[5] ~= '' then
  for _, v in ipairs({'last_run_at', ARGV[5], 'last_job_id', ARGV[6]}) do
    fields[#fields + 1] = v
  end
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1
