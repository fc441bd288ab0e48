-- retry.lua - puts dead jobs back in the ready set with fresh attempts.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job id, or '' for every dead job of the queue
-- ARGV[2]  most jobs to move in this call (with ARGV[1] = '')
-- Reply:   number of jobs moved (0 with ARGV[1] = '': none left); -1 if the
--          named job exists but is not dead; -2 if it does not exist.
-- Ids whose record already expired are dropped from the dead set on the way
-- and not counted, so a caller looping until 0 empties the set.
local now = istr(now_ms())
local was_empty = redis.call('EXISTS', P .. 'ready') == 0
local limit = 1
if ARGV[1] ~= '' then
  local state = redis.call('HGET', jobkey(ARGV[1]), 'state')
  if not state then
    return -2
  elseif state ~= 'dead' then
    return -1
  end
else
  limit = tonumber(ARGV[2])
end
local moved = 0
while moved < limit do
  local ids
  if ARGV[1] ~= '' then
    ids = { ARGV[1] }
  else
    ids = redis.call('ZRANGE', P .. 'dead', 0, limit - moved - 1)
    if #ids == 0 then
      break
    end
  end
  for _, id in ipairs(ids) do
    local jk = jobkey(id)
    redis.call('ZREM', P .. 'dead', id)
    local old = redis.call('HGET', jk, 'score')
    if old then
      local score = ready_score(score_prio(old), redis.call('INCR', P .. 'seq'))
      redis.call('PERSIST', jk)
      redis.call('HSET', jk, 'state', 'queued', 'attempt', '0', 'score', score, 'ready_at', now)
      redis.call('HDEL', jk, 'finished_at')
      redis.call('ZADD', P .. 'ready', score, id)
      moved = moved + 1
    end
  end
  if ARGV[1] ~= '' then
    break
  end
end
count('retried', moved)
wake_if(was_empty and moved > 0)
return moved
