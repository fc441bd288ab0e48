-- stats.lua - one queue's depth by state, oldest waiting job and counters.
--
-- KEYS[1]  queue prefix
-- Reply:   {queued, scheduled, active, succeeded, dead, canceled,
--           ms since the oldest queued job became ready (-1: none),
--           counters as a flat field/value array,
--           ms since the queue was paused (pause.lua; -1: not paused, 0: the
--           flag holds no time)}
-- Read only, and it reads around garbage: a state set that is no sorted
-- set counts -1, a queued job whose record is unreadable is not aged, a
-- stats key that is no hash gives no counters.
local now = now_ms()
local out = {}
for _, s in ipairs({ 'ready', 'scheduled', 'active', 'succeeded', 'dead', 'canceled' }) do
  local c = redis.pcall('ZCARD', P .. s)
  out[#out + 1] = (type(c) == 'number' or not data_error(c)) and c or -1
end
-- The head of each priority band is that band's oldest job (FIFO), so the
-- oldest waiting job is among at most ten heads.
local oldest = -1
if out[1] > 0 then
  for prio = 0, 9 do
    local lo = (9 - prio) * 1e13
    local head = redis.call('ZRANGEBYSCORE', P .. 'ready', string.format('%d', lo),
      '(' .. string.format('%d', lo + 1e13), 'LIMIT', 0, 1)
    if head[1] then
      local f = hmget(jobkey(head[1]), 'ready_at')
      local at = f and int_in(f[1], 0, now)
      if at and now - at > oldest then
        oldest = now - at
      end
    end
  end
end
out[#out + 1] = oldest
local c = redis.pcall('HGETALL', P .. 'stats')
out[#out + 1] = (c.err and data_error(c)) and {} or c
local pz = redis.pcall('GET', P .. 'paused')
if pz == false then
  out[#out + 1] = -1
else
  local at = type(pz) == 'string' and int_in(pz, 0, now)
  out[#out + 1] = at and now - at or 0
end
return out
