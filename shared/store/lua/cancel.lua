-- cancel: stop a job. Not yet running: canceled at once. Running: cancel_requested is set
-- and the owning worker is told on the cancel channel (it also sees the flag on its next
-- lease renewal).
-- transition: cancel: scheduled pending retrying -> canceled
-- transition: request_cancel: running -> running
-- KEYS: the 12 queue keys, then the job hash.
-- ARGV: [1] job_id, [2] ttl_ms, [3] cancel channel
-- Returns {'canceled'} | {'requested'} | {'terminal', status} | {'missing'}
local id, ttl, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local bad_type = wrong_key_type()
if bad_type then return bad_type end
local key = KEYS[FIRST_JOB]
local f = redis.call('HMGET', key, 'status', 'entry')
local status = f[1]
if status == false then return {'missing'} end
if status == 'running' then
  redis.call('HSET', key, 'cancel_requested', 1, 'updated_at', now_ms())
  redis.call('PUBLISH', channel, id)
  return {'requested'}
end
if status ~= 'scheduled' and status ~= 'pending' and status ~= 'retrying' then
  return {'terminal', status}
end
local now = now_ms()
if status == 'pending' then
  -- Delivered but not yet claimed entries stay in the PEL until the claim script acks them.
  if f[2] then ack(f[2]) end
  limits_forget(key, id)  -- it may be waiting for a concurrency slot
else
  redis.call('ZREM', KEYS[K_DELAYED], id)
end
redis.call('HSET', key, 'status', 'canceled', 'finished_at', now, 'updated_at', now)
reindex(id, status, 'canceled')
retain(key, id, ttl, now)
return {'canceled'}
