-- retry.lua - puts dead jobs back in the ready set with fresh attempts.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job id, or '' for every dead job of the queue
-- ARGV[2]  most jobs to move in this call (with ARGV[1] = '')
-- Reply:   number of jobs moved; -1 if the named job exists but is not dead;
--          -2 if it does not exist.
local now = now_ms()
local was_empty = redis.call('EXISTS', P .. 'ready') == 0
local ids
if ARGV[1] ~= '' then
  local state = redis.call('HGET', jobkey(ARGV[1]), 'state')
  if not state then
    return -2
  elseif state ~= 'dead' then
    return -1
  end
  ids = { ARGV[1] }
else
  ids = redis.call('ZRANGE', P .. 'dead', 0, tonumber(ARGV[2]) - 1)
end
local moved = 0
for _, id in ipairs(ids) do
  local jk = jobkey(id)
  redis.call('ZREM', P .. 'dead', id)
  local prio = redis.call('HGET', jk, 'prio')
  if prio then
    local score = ready_score(prio, redis.call('INCR', P .. 'seq'))
    redis.call('PERSIST', jk)
    redis.call('HSET', jk, 'state', 'queued', 'attempt', 0, 'score', score, 'ready_at', now)
    redis.call('HDEL', jk, 'finished_at')
    redis.call('ZADD', P .. 'ready', score, id)
    moved = moved + 1
  end
end
if moved > 0 then
  redis.call('HINCRBY', P .. 'stats', 'retried', moved)
end
wake_if(was_empty and moved > 0)
return moved
