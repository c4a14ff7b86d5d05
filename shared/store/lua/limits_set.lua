-- limits_set: an operator sets the concurrency and/or rate limit of one limit key of a
-- queue (shared/store/limits.py validates the settings). Held jobs that the new setting
-- lets start are moved back onto the stream at once (_limits.lua, limits_wake).
-- KEYS: the 11 queue keys, then the queue's limits hash.
-- ARGV: [1] limit key, [2] its settings (compact JSON), [3] the most limit keys a queue
--   may have
-- Returns 1 (created), 0 (replaced) or -1 (refused, nothing written: the queue has the most
-- limit keys already).
local bad_type = wrong_key_type()
if bad_type then return bad_type end
local key, name = KEYS[QUEUE_KEYS + 1], ARGV[1]
local exists = redis.call('HEXISTS', key, name) == 1
if not exists and redis.call('HLEN', key) >= tonumber(ARGV[3]) then return -1 end
redis.call('HSET', key, name, ARGV[2])
limits_wake(limits_base(), name, now_ms())
if exists then return 0 end
return 1
