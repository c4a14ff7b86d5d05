-- purge: an operator deletes finished jobs of one queue before their retention ends. The
-- jobs stop existing, so this is no state change of the table. Only a terminal status
-- (completed, failed, canceled, expired) may be purged, and each job is checked again here: one whose
-- status changed since the caller read its id (replayed, say) is left alone. A job whose
-- hash already expired (retention over, expire.lua not run yet) only loses its index entries.
-- KEYS: the 12 queue keys, then one job hash per id of ARGV, then (optional) the queue's
--   unique hash (<prefix>:{q}:unique): the unique keys the removed jobs held are dropped too.
-- ARGV: [1] status, [2..] job ids, in the order of their hashes in KEYS
-- Returns the number of jobs removed from the status index.
local status = ARGV[1]
if status ~= 'completed' and status ~= 'failed' and status ~= 'canceled' and
    status ~= 'expired' then
  return redis.error_reply('ERR purge: ' .. tostring(status) .. ' is not a finished status')
end
local jobs = #ARGV - 1
local unique = job_count() == jobs + 1 and KEYS[#KEYS]
if not unique and jobs ~= job_count() then
  return redis.error_reply('ERR purge: ' .. jobs .. ' ids for ' .. job_count() ..
    ' job keys')
end
local bad_type = wrong_key_type()
if bad_type then return bad_type end
local removed, gone = 0, {}
for i = 1, jobs do
  local id, key = ARGV[i + 1], KEYS[FIRST_JOB + i - 1]
  local current = redis.call('HGET', key, 'status')
  local listed = redis.call('ZSCORE', KEYS[INDEX[status]], id)
  if current == status or (current == false and listed) then
    if current then redis.call('DEL', key) end
    redis.call('ZREM', KEYS[K_ALL], id)
    redis.call('ZREM', KEYS[K_EXPIRIES], id)
    removed = removed + redis.call('ZREM', KEYS[INDEX[status]], id)
    gone[#gone + 1] = id
  end
end
drop_unique(unique, gone)
return removed
