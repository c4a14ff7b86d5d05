-- set_concurrency: an operator asks one live worker to run another number of jobs at once
-- (worker/resize.py reads it within a second). Written into the worker's heartbeat hash,
-- so it goes with the worker: nothing is written for a worker that is gone (its hash
-- expired), which would otherwise leave a hash without expiry behind.
-- KEYS: [1] the worker's hash (<prefix>:worker:<id>)
-- ARGV: [1] the concurrency asked for ('' = none: back to the queue's or its own)
-- Returns 1 when written, 0 when no such worker is live.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then
  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' is not a worker hash')
end
if ARGV[1] == '' then
  redis.call('HDEL', KEYS[1], 'desired_concurrency')
else
  redis.call('HSET', KEYS[1], 'desired_concurrency', ARGV[1])
end
return 1
