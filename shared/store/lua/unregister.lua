-- unregister: remove a queue name from the registry, if it still holds the generation
-- the caller retired (retire.lua); a name registered again since keeps its place.
-- KEYS: [1] the registry set, [2] its generation hash (see register.lua).
-- ARGV: [1] queue name, [2] the generation retired (0 = a name without one).
-- Returns 1 when the name was removed, 0 when it was not there or holds another
-- generation.
local name, gen = ARGV[1], tonumber(ARGV[2])
if redis.call('SISMEMBER', KEYS[1], name) == 0 then return 0 end
if tonumber(redis.call('HGET', KEYS[2], name) or 0) ~= gen then return 0 end
redis.call('SREM', KEYS[1], name)
redis.call('HDEL', KEYS[2], name)
return 1
