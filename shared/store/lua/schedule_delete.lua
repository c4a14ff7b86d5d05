-- schedule_delete: remove one periodic schedule (store/schedules.py). Jobs it created stay.
-- KEYS: [1] the schedule's hash, [2] the zset of schedule names by next fire time.
-- ARGV: [1] name, [2] '1' = only a leftover: remove the name from the zset only when its
--   hash is gone (a scheduler tidying up), '' = remove both.
-- Returns 1 when the schedule existed (or the leftover was removed), 0 when not.
if ARGV[2] == '1' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
  return redis.call('ZREM', KEYS[2], ARGV[1])
end
redis.call('ZREM', KEYS[2], ARGV[1])  -- first: a WRONGTYPE here writes nothing
return redis.call('DEL', KEYS[1])
