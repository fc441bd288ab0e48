-- purge.lua - deletes jobs of one state of a queue, a slice per call.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  the state: 'queued', 'scheduled', 'succeeded', 'dead' or
--          'canceled' (never 'active': a leased job must be canceled)
-- ARGV[2]  most jobs to delete in this call
-- Reply:   how many ids were taken off the state's set (0: it is empty).
-- Errors:  an unknown state; the state's set is no sorted set.
-- Each job goes with its record, its history and its idempotency key (when
-- the key still names it). An id whose record says another state (it moved
-- between the caller's look and this call, or the record is damaged) is
-- taken off this set only: its record is left alone. Counted in the stats
-- as 'purged'.
local sets = { queued = 'ready', scheduled = 'scheduled', succeeded = 'succeeded',
  dead = 'dead', canceled = 'canceled' }
local state = ARGV[1]
local set = sets[state]
if not set then
  return redis.error_reply('ERR jobd: cannot purge state ' .. tostring(state) ..
    '; one of queued, scheduled, succeeded, dead, canceled')
end
zsets_ok(set)
local limit = int_in(ARGV[2], 1, 100000) or 500
local ids = redis.call('ZRANGE', P .. set, 0, limit - 1)
local purged = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', P .. set, id)
  local f, kind = hmget(jobkey(id), 'state', 'env')
  if f and (f[1] == state or not f[1]) then
    forget(id, f[2])
    purged = purged + 1
  elseif not f and kind == 'none' then
    redis.call('DEL', histkey(id))
  end
end
count('purged', purged)
return #ids
