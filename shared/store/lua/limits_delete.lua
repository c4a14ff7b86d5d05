-- limits_delete: an operator removes the limits of one limit key of a queue. Jobs held for
-- that key must not wait forever: while any remain, the key stays in the hash as
-- {"draining":true} (no limit, not listed) and the scheduler's sweep moves them back onto
-- the stream, a bounded number per pass, then drops it (_limits.lua, limits_sweep).
-- KEYS: the 11 queue keys, then the queue's limits hash.
-- ARGV: [1] limit key
-- Returns 1 (removed) or 0 (it had no limits).
local bad_type = wrong_key_type()
if bad_type then return bad_type end
local key, name = KEYS[QUEUE_KEYS + 1], ARGV[1]
local raw = redis.call('HGET', key, name)
if not raw then return 0 end
local ok, v = pcall(cjson.decode, raw)
if ok and type(v) == 'table' and v.draining then return 0 end
local base = limits_base()
local t = redis.call('TYPE', base .. 'held:' .. name)['ok']
if t == 'zset' and redis.call('ZCARD', base .. 'held:' .. name) > 0 then
  redis.call('HSET', key, name, '{"draining":true}')
  limits_cache[base] = nil
  limits_wake(base, name, now_ms())
else
  redis.call('HDEL', key, name)
end
return 1
