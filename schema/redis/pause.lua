-- pause.lua - pauses or resumes a queue for every worker at once.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  '1' to pause, '0' to resume
-- Reply:   1 changed, 0 it already was so.
-- A paused queue has PREFIX:{Q}:paused (Redis time in ms when it was
-- paused). claim.lua checks it on every call, so no worker leases a job of
-- the queue once this returns; jobs already leased run on and report as
-- usual. Resuming wakes idle workers when jobs are waiting.
local k = P .. 'paused'
if ARGV[1] == '1' then
  if redis.call('EXISTS', k) == 1 then
    return 0
  end
  redis.call('SET', k, istr(now_ms()))
  return 1
end
if redis.call('DEL', k) == 0 then
  return 0
end
local t = redis.call('TYPE', P .. 'ready').ok
if t == 'zset' and redis.call('ZCARD', P .. 'ready') > 0 then
  redis.call('PUBLISH', P .. 'wake', '1')
end
return 1
