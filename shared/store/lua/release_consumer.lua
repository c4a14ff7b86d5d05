-- release_consumer: delete a consumer from the group, but only when it holds no pending
-- entry. XGROUP DELCONSUMER silently drops a consumer's pending entries, which would
-- strand those jobs forever.
-- KEYS: [1] stream
-- ARGV: [1] consumer
-- Returns 1 when deleted, 0 when it still holds entries.
local held = redis.call('XPENDING', KEYS[1], 'workers', '-', '+', 1, ARGV[1])
if #held > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], 'workers', ARGV[1])
return 1
