-- enqueue: create jobs in one queue atomically: hash + indexes + stream entry (or delayed).
-- transition: create: new -> pending scheduled
-- KEYS: the 11 queue keys, then one job hash per job.
-- ARGV: [1] queue name, [2] schedule channel, then 7 per job:
--   id, type, payload (msgpack), max_attempts, timeout_ms, correlation_id (each '' = not set:
--   the worker then applies the handler's or its own default),
--   due_ms ('' = now, else absolute epoch ms; a due time in the past means now)
-- Returns {now_ms, status_1, ..., status_n}
--   or {-1, i} when job i repeats an id of the same batch (nothing written)
--   or a WRONGTYPE error when one of the keys holds another type (nothing written).
-- A job whose id already exists is left as it is and reported with its current status:
-- ids carry 80 random bits, so an existing id means this very call is being sent again
-- (a client retry after a lost reply), and creating nothing is the right answer.
local queue, channel = ARGV[1], ARGV[2]
local n = job_count()
local bad_type = wrong_key_type()
if bad_type then return bad_type end
local seen = {}
for i = 1, n do
  local id = ARGV[3 + (i - 1) * 7]
  if seen[id] then return {-1, i} end
  seen[id] = true
end

local now = now_ms()
local out = {now}
-- Write one new job from its 7 ARGV starting after index a; returns its status.
local function create(key, a)
  local id, due = ARGV[a + 1], tonumber(ARGV[a + 7])
  local fields = {
    'id', id, 'type', ARGV[a + 2], 'queue', queue, 'payload', ARGV[a + 3],
    'attempts', 0, 'deliveries', 0, 'created_at', now, 'updated_at', now,
  }
  for j, name in ipairs({'max_attempts', 'timeout_ms', 'correlation_id'}) do
    if ARGV[a + 3 + j] ~= '' then
      fields[#fields + 1] = name
      fields[#fields + 1] = ARGV[a + 3 + j]
    end
  end
  local status
  if due and due > now then
    status = 'scheduled'
    for _, v in ipairs({'status', status, 'run_at', due}) do fields[#fields + 1] = v end
    redis.call('HSET', key, unpack(fields))
    schedule(id, due, channel, queue)
  else
    status = 'pending'
    local entry = push(id)
    for _, v in ipairs({'status', status, 'entry', entry}) do fields[#fields + 1] = v end
    redis.call('HSET', key, unpack(fields))
  end
  redis.call('ZADD', KEYS[K_ALL], 0, id)
  reindex(id, nil, status)
  return status
end

for i = 1, n do
  local key, a = KEYS[FIRST_JOB + i - 1], 2 + (i - 1) * 7
  local existing = redis.call('HGET', key, 'status')
  if existing then
    out[#out + 1] = existing
  else
    out[#out + 1] = create(key, a)
  end
end
return out
