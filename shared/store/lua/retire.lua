-- retire: mark a queue that holds no job as leaving the registry, so that no job is
-- written into it under the registration being removed.
-- KEYS: the 12 queue keys, then [13] the queue's tombstone (<prefix>:{q}:retired), [14] its
--   pause flag (<prefix>:{q}:paused): a paused queue stays in the registry, so that its
--   pause keeps showing in GET /queues while it holds no job.
-- ARGV: [1] the registration generation being retired (register.lua; 0 = none),
--   [2] how long the tombstone is kept (ms).
-- Returns 1 when the queue is empty and its tombstone names `gen` (or a later
-- generation): the caller may now unregister the name with that generation; 0 when the
-- queue holds a job (stream entry, delayed or indexed id) or is paused, nothing written.
-- enqueue.lua refuses a job whose registration generation is not above the tombstone's.
local bad_type = wrong_key_type(function(i) if i >= FIRST_JOB then return 'string' end end)
if bad_type then return bad_type end
if redis.call('EXISTS', KEYS[FIRST_JOB + 1]) == 1 then return 0 end
for _, k in ipairs({K_DELAYED, K_ALL, K_EXPIRIES}) do
  if redis.call('ZCARD', KEYS[k]) > 0 then return 0 end
end
for _, k in pairs(INDEX) do
  if redis.call('ZCARD', KEYS[k]) > 0 then return 0 end
end
if redis.call('EXISTS', KEYS[K_STREAM]) == 1 and redis.call('XLEN', KEYS[K_STREAM]) > 0 then
  return 0
end
local gen = tonumber(ARGV[1])
local tomb = tonumber(redis.call('GET', KEYS[FIRST_JOB]) or -1)
if tomb < gen then
  redis.call('SET', KEYS[FIRST_JOB], gen, 'PX', tonumber(ARGV[2]))
end
return 1
