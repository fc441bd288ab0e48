-- watch.lua - marks a job as watched, so that every script changing it
-- publishes the change on PREFIX:{QUEUE}:ev:ID, and returns its state. The
-- caller subscribes first, then calls this, so no change falls between the
-- two.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job id
-- Reply:   {state, progress} or {} if there is no such job.
-- Errors:  the job key holds another type than a hash.
local jk = jobkey(ARGV[1])
local f, kind = hmget(jk, 'state', 'progress')
if not f then
  return redis.error_reply('ERR jobd: job key ' .. jk .. ' holds a ' .. kind ..
    ', not a job record')
end
if not f[1] then
  return {}
end
redis.call('HSET', jk, 'watch', '1')
return { f[1], f[2] or '0' }
