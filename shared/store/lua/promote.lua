-- promote: move due scheduled and retrying jobs onto the stream. Run by every scheduler
-- replica: ZREM is the claim, so a job is promoted once however many schedulers race.
-- "Due" is judged by Redis TIME, never by a scheduler's clock.
-- transition: promote: scheduled retrying -> pending
-- transition: expire: scheduled retrying -> expired
-- KEYS: the 12 queue keys, then the job hash of each candidate.
-- ARGV: [1] ttl_ms (retention of a job that ends expired), then 1 per candidate: job_id
-- A due job whose expires_at (Redis TIME) has passed is not put on the stream: it ends
-- expired there, counted in `expired`.
-- Returns {promoted, now_ms, next_due_ms (-1 when nothing is delayed), expired, then 2 per
--   promoted job: job_id, correlation_id ('' = none)} so the scheduler can log each
--   promotion.
local bad_type = wrong_key_type()
if bad_type then return bad_type end
local now = now_ms()
local ttl = tonumber(ARGV[1])
local promoted, expired = 0, 0
local moved = {}
-- End a due job unrun when its expires_at has passed; true when it did.
local function expire_due(key, id, status, expires_at)
  local at = tonumber(expires_at)
  if at == nil or at > now then return false end
  redis.call('HSET', key, 'status', 'expired', 'finished_at', now, 'updated_at', now)
  reindex(id, status, 'expired')
  retain(key, id, ttl, now)
  expired = expired + 1
  return true
end
for i = 1, job_count() do
  local key, id = KEYS[FIRST_JOB + i - 1], ARGV[i + 1]
  local due = tonumber(redis.call('ZSCORE', KEYS[K_DELAYED], id))
  if due and due <= now then
    local f = redis.call('HMGET', key, 'status', 'correlation_id', 'expires_at')
    local status = f[1]
    redis.call('ZREM', KEYS[K_DELAYED], id)
    local live = status == 'scheduled' or status == 'retrying'
    if live and not expire_due(key, id, status, f[3]) then
      local entry = push(id)
      redis.call('HSET', key, 'status', 'pending', 'entry', entry, 'updated_at', now)
      reindex(id, status, 'pending')
      promoted = promoted + 1
      moved[#moved + 1] = id
      moved[#moved + 1] = f[2] or ''
    end
  end
end
local head = redis.call('ZRANGE', KEYS[K_DELAYED], 0, 0, 'WITHSCORES')
local out = {promoted, now, tonumber(head[2]) or -1, expired}
for _, v in ipairs(moved) do out[#out + 1] = v end
return out
