-- expire: drop the index entries of finished jobs whose retention is over (their hashes
-- expire by TTL on their own).
-- KEYS: the 12 queue keys, then (optional) the queue's unique hash (<prefix>:{q}:unique):
--   the unique keys the removed jobs held are dropped too.
-- ARGV: [1] limit (ids per call, keeps the script short)
-- Returns the ids of the jobs removed from the indexes (the caller then drops their
-- entries from the id index, <prefix>:ids:<n>, which lives in other slots).
local bad_type = wrong_key_type()
if bad_type then return bad_type end
local now = now_ms()
local ids = redis.call('ZRANGE', KEYS[K_EXPIRIES], '-inf', now, 'BYSCORE', 'LIMIT', 0,
  tonumber(ARGV[1]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[K_ALL], id)
  for _, k in pairs(INDEX) do redis.call('ZREM', KEYS[k], id) end
  redis.call('ZREM', KEYS[K_EXPIRIES], id)
end
drop_unique(#KEYS > QUEUE_KEYS and KEYS[#KEYS], ids)
return ids
