-- read_claim: read new stream entries for this consumer and start an attempt for each, in
-- one step (the worker's fetch, shared/store/consumer.py `fetch`): the XREADGROUP and the
-- claims of claim.lua in one script, so an entry is never delivered without being claimed
-- and a fetch costs one round trip instead of two.
-- transition: claim: pending -> running
-- transition: expire: pending -> expired
-- transition: hold: pending -> pending
-- transition: rate_limit: pending -> scheduled
-- KEYS: the 12 queue keys of each queue read, in priority order; then one per queue, in the
--   same order: its pause flag (<prefix>:{q}:paused, a string). A paused queue is not read
--   at all (no XREADGROUP: nothing of it is delivered).
-- ARGV: [1..7] as claim.lua (consumer, max_deliveries, ttl_ms, defer_last_chance,
--   default max_attempts, handler limits, lease_ms), [8] count: the most entries read in all,
--   then one per queue: the prefix of its job keys (job key = prefix .. job id).
-- Returns one list per queue of claim.lua's rows, then, when nothing was read, a list of
-- one stream id per queue: the newest entry its stream holds ('0-0' for none; '' for a
-- paused queue, which a wait must not watch: its waiting entries are not for now); else {}.
-- Nothing waits in the stream that this consumer may take beyond it, so a following
-- `XREAD BLOCK ... <id>` wakes exactly when a new entry arrives (consumer.py pipelines one
-- ahead of this script when a fetch found nothing: the wake-up and the next fetch are then
-- one round trip).
local queues = #KEYS / (QUEUE_KEYS + 1)
-- A fetch touches the stream, the pending and running indexes, and (a job that ends
-- unrun) the failed, canceled and expired indexes and the expiries: only those are checked.
local TOUCHED = {[K_STREAM] = true, [INDEX.pending] = true, [INDEX.running] = true,
  [INDEX.failed] = true, [INDEX.canceled] = true, [K_EXPIRIES] = true, [INDEX.expired] = true}
-- Whether queue q is paused (its flag, after every queue's keys).
local function paused(q)
  local flag = KEYS[queues * QUEUE_KEYS + q]
  local got = redis.call('TYPE', flag)['ok']
  if got ~= 'none' and got ~= 'string' then
    return redis.error_reply('WRONGTYPE ' .. flag .. ' holds a ' .. got ..
      ', expected a string; nothing was written')
  end
  return got == 'string'
end
local is_paused = {}
for q = 1, queues do
  is_paused[q] = paused(q)
  if type(is_paused[q]) == 'table' then return is_paused[q] end
end
for i = 1, queues * QUEUE_KEYS do
  local slot = (i - 1) % QUEUE_KEYS + 1
  local want = KEY_TYPES[slot]
  local got = TOUCHED[slot] and redis.call('TYPE', KEYS[i])['ok'] or 'none'
  if got ~= 'none' and got ~= want then
    return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' holds a ' .. got ..
      ', expected a ' .. want .. '; nothing was written')
  end
end
limits_load(queues)
local c = claim_settings()
local left = tonumber(ARGV[CLAIM_ARGS + 1])
local now = now_ms()
local out, newest, read = {}, {}, 0
for q = 1, queues do
  B = (q - 1) * QUEUE_KEYS
  local stream, prefix, rows = KEYS[B + K_STREAM], ARGV[CLAIM_ARGS + 1 + q], {}
  if left > 0 and not is_paused[q] then
    local reply = redis.call('XREADGROUP', 'GROUP', GROUP, c.consumer, 'COUNT', left,
      'STREAMS', stream, '>')
    if reply and reply[1] then
      -- {{stream, entries}}; fakeredis (conveyor.testing) gives {stream, entries}
      local entries = type(reply[1]) == 'string' and reply[2] or reply[1][2]
      for _, item in ipairs(entries) do
        local entry, fields, id = item[1], item[2], nil
        for j = 1, #fields, 2 do
          if fields[j] == 'id' then id = fields[j + 1] end
        end
        if id then
          rows[#rows + 1] = claim_entry(c, prefix .. id, entry, id, false, true, now)
        else  -- not an entry of a job: drop it
          ack(entry)
        end
        left = left - 1
        read = read + 1
      end
    end
  end
  out[q] = rows
end
if read == 0 then  -- only a fetch that found nothing makes the next one wait
  for q = 1, queues do
    local last = is_paused[q] and {{''}} or
      redis.call('XREVRANGE', KEYS[(q - 1) * QUEUE_KEYS + K_STREAM], '+', '-', 'COUNT', 1)
    newest[q] = last[1] and last[1][1] or '0-0'
  end
end
out[queues + 1] = newest
return out
