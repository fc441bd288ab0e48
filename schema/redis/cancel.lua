-- cancel.lua - cancels one job.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job id
-- ARGV[2]  retention of canceled records in ms (0: keep)
-- Reply:   {code, state}: code 1 canceled now (it was queued or scheduled);
--          2 requested (it is active: the holder sees the flag on its next
--          extend and ends it canceled, or reap does if the lease expires);
--          3 already finished (state says how); 0 no such job.
-- Errors:  the job key holds another type than a hash.
local id = ARGV[1]
local jk = jobkey(id)
local f, kind = hmget(jk, 'state', 'watch')
if not f then
  return redis.error_reply('ERR jobd: job key ' .. jk .. ' holds a ' .. kind ..
    ', not a job record')
end
local state = f[1]
if not state then
  return { 0, '' }
end
if state == 'queued' or state == 'scheduled' then
  zsets_ok('ready', 'scheduled', 'active', 'canceled')
  redis.call('ZREM', P .. 'ready', id)
  redis.call('ZREM', P .. 'scheduled', id)
  finish(id, jk, 'canceled', istr(now_ms()), ARGV[2])
  notify(id, f[2], 'canceled')
  count('canceled', 1)
  return { 1, 'canceled' }
elseif state == 'active' then
  redis.call('HSET', jk, 'cancel', '1')
  return { 2, 'active' }
end
return { 3, state }
