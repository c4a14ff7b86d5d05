-- queue_stats: one queue's numbers for operators, in one call (read only, writes nothing).
-- KEYS: [1] the queue's stream, [2..8] its running, scheduled, retrying, failed, completed,
--   canceled and expired indexes, [9] its pause flag (only what is read: every argument
--   costs the caller to pack).
-- Returns {stream length, the group's pending count, its consumers, Redis TIME in ms,
--   the id of the oldest entry the group has not delivered yet (false: none),
--   then ZCARD of the running, scheduled, retrying, failed, completed, canceled, expired
--   indexes, then 1 when the queue is paused, else 0}.
-- One script per queue instead of nine commands: the replies a reader parses drop
-- ninefold, which is what the statistics of many queues cost (shared/store/inspect.py).
-- A key of another type fails the call (WRONGTYPE), as the plain commands would: it
-- writes nothing, so no type check comes first.
local length, pending, consumers, last = 0, 0, 0, '0-0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  length = redis.call('XLEN', KEYS[1])
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local fields = {}
    for i = 1, #group, 2 do fields[group[i]] = group[i + 1] end
    if fields['name'] == GROUP then
      pending, consumers, last = fields['pending'], fields['consumers'], fields['last-delivered-id']
    end
  end
end
local oldest = false
if length > 0 then
  local entries = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 1)
  if #entries > 0 then oldest = entries[1][1] end
end
local out = {length, pending, consumers, now_ms(), oldest}
for i = 2, 8 do
  out[#out + 1] = redis.call('ZCARD', KEYS[i])
end
out[#out + 1] = redis.call('EXISTS', KEYS[9])
return out
