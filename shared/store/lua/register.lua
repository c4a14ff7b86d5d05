-- register: add queue names to the registry, refusing the whole call when the new ones
-- would take it past the cap; return each name's registration generation.
-- KEYS: [1] the registry set (<prefix>:queues), [2] its generation hash
--   (<prefix>:gen{<prefix>:queues}, same slot): name -> generation, '#seq' -> the last one given.
-- ARGV: [1] the cap (-1 = none: a worker's configured queues), [2..] queue names.
-- Returns {0, gen_1, ...} (one generation per name, in ARGV order), or, with nothing
-- written, {-1, size}: the new names would take the registry (now `size`) past the cap.
-- A generation is given when a name enters the registry (or, for a name registered before
-- generations existed, on its first registration since); it changes only when the name
-- left the registry (unregister.lua) and came back, which is what lets enqueue.lua refuse
-- a job whose registration was retired meanwhile (see docs/adr/0008-queue-registry.md).
local cap = tonumber(ARGV[1])
local new, seen = 0, {}
for i = 2, #ARGV do
  local name = ARGV[i]
  if not seen[name] and redis.call('SISMEMBER', KEYS[1], name) == 0 then new = new + 1 end
  seen[name] = true
end
if new > 0 and cap >= 0 then
  local size = redis.call('SCARD', KEYS[1])
  if size + new > cap then return {-1, size} end
end
local out = {0}
for i = 2, #ARGV do
  local name = ARGV[i]
  redis.call('SADD', KEYS[1], name)
  local gen = redis.call('HGET', KEYS[2], name)
  if not gen then
    gen = redis.call('HINCRBY', KEYS[2], '#seq', 1)
    redis.call('HSET', KEYS[2], name, gen)
  end
  out[#out + 1] = tonumber(gen)
end
return out
