-- delete.lua - deletes one job that is not leased.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job id
-- Reply:   {code, state}: 1 deleted; 0 no such job; -1 refused, it is
--          active (cancel it first: its worker holds a lease).
-- Errors:  the job key holds another type than a hash.
-- The job leaves every state set and goes with its record, its history and
-- its idempotency key (when the key still names it). Counted in the stats
-- as 'deleted'.
local id = ARGV[1]
local f, kind = hmget(jobkey(id), 'state', 'env')
if not f then
  return redis.error_reply('ERR jobd: job key ' .. jobkey(id) .. ' holds a ' .. kind ..
    ', not a job record')
end
if not f[1] and not f[2] then
  return { 0, '' }
end
if f[1] == 'active' then
  return { -1, 'active' }
end
zsets_ok('ready', 'scheduled', 'succeeded', 'dead', 'canceled')
for _, s in ipairs({ 'ready', 'scheduled', 'succeeded', 'dead', 'canceled' }) do
  redis.call('ZREM', P .. s, id)
end
forget(id, f[2])
count('deleted', 1)
return { 1, f[1] or '' }
