-- stats.lua - one queue's depth by state, oldest waiting job and counters.
--
-- KEYS[1]  queue prefix
-- Reply:   {queued, scheduled, active, succeeded, dead, canceled,
--           ms since the oldest queued job became ready (-1: none),
--           counters as a flat field/value array}
local now = now_ms()
local out = {}
for _, s in ipairs({ 'ready', 'scheduled', 'active', 'succeeded', 'dead', 'canceled' }) do
  out[#out + 1] = redis.call('ZCARD', P .. s)
end
-- The head of each priority band is that band's oldest job (FIFO), so the
-- oldest waiting job is among at most ten heads.
local oldest = -1
for prio = 0, 9 do
  local lo = (9 - prio) * 1e13
  local head = redis.call('ZRANGEBYSCORE', P .. 'ready', string.format('%d', lo),
    '(' .. string.format('%d', lo + 1e13), 'LIMIT', 0, 1)
  if head[1] then
    local at = tonumber(redis.call('HGET', jobkey(head[1]), 'ready_at') or now)
    if oldest < 0 or now - at > oldest then
      oldest = now - at
    end
  end
end
out[#out + 1] = oldest
out[#out + 1] = redis.call('HGETALL', P .. 'stats')
return out
