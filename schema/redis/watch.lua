-- watch.lua - marks a job as watched, so that every script changing it
-- publishes the change on PREFIX:{QUEUE}:ev:ID, and returns its state. The
-- caller subscribes first, then calls this, so no change falls between the
-- two.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job id
-- Reply:   {state, progress} or {} if there is no such job.
local jk = jobkey(ARGV[1])
local f = redis.call('HMGET', jk, 'state', 'progress')
if not f[1] then
  return {}
end
redis.call('HSET', jk, 'watch', '1')
return { f[1], f[2] or '0' }
