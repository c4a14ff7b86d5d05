-- replay: an operator runs a failed or canceled job again: a new stream entry, attempts and
-- lost attempts start over, retention ends (the hash no longer expires). `history`,
-- `last_error` and `deliveries` are kept (deliveries keeps fencing tokens unique).
-- transition: replay: failed canceled -> pending
-- KEYS: the 12 queue keys, then the job hash.
-- ARGV: [1] job_id
-- Returns {'pending', entry_id} | {'refused', status} | {'missing'}
local id = ARGV[1]
local key = KEYS[FIRST_JOB]
local bad_type = wrong_key_type()
if bad_type then return bad_type end
local status = redis.call('HGET', key, 'status')
if status == false then return {'missing'} end
if status ~= 'failed' and status ~= 'canceled' then return {'refused', status} end
local now = now_ms()
local entry = push(id)
redis.call('HSET', key, 'status', 'pending', 'entry', entry, 'attempts', 0, 'lost', 0,
  'updated_at', now)
redis.call('HDEL', key, 'cancel_requested', 'finished_at', 'token', 'worker', 'started_at',
  'next_run_at', 'result')
redis.call('PERSIST', key)
redis.call('ZREM', KEYS[K_EXPIRIES], id)
redis.call('ZADD', KEYS[K_ALL], 0, id)
reindex(id, status, 'pending')
return {'pending', entry}
