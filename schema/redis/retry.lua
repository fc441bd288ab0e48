-- retry.lua - puts dead jobs back in the ready set with fresh attempts.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job id, or '' for every dead job of the queue
-- ARGV[2]  most jobs to move in this call (with ARGV[1] = '')
-- Reply:   number of jobs moved (0 with ARGV[1] = '': none left); -1 if the
--          named job exists but is not dead; -2 if it does not exist.
-- Errors:  the named job's key holds another type than a hash.
-- Ids whose record already expired are dropped from the dead set on the way
-- and not counted, so a caller looping until 0 empties the set; so are ids
-- whose key holds another type (counted in the stats as 'dropped'). A job
-- whose score is no ready-set score (dead for that reason, perhaps) goes
-- back at the default priority (JOBD_DEFAULT_PRIORITY).
local now = istr(now_ms())
zsets_ok('dead', 'ready')
local was_empty = redis.call('EXISTS', P .. 'ready') == 0
local limit = 1
if ARGV[1] ~= '' then
  local f, kind = hmget(jobkey(ARGV[1]), 'state')
  if not f then
    return redis.error_reply('ERR jobd: job key ' .. jobkey(ARGV[1]) .. ' holds a ' .. kind ..
      ', not a job record')
  end
  local state = f[1]
  if not state then
    return -2
  elseif state ~= 'dead' then
    return -1
  end
else
  limit = int_in(ARGV[2], 1, 1e9) or 1
end
local moved, dropped = 0, 0
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
    local f, kind = hmget(jk, 'score', 'state', 'batch')
    if not f then
      dropped = dropped + 1
    elseif f[1] or f[2] or redis.call('EXISTS', jk) == 1 then
      local prio = int_in(f[1], 0, SCORE_MAX) and score_prio(f[1]) or 5
      local score = ready_score(prio, next_seq(1) + 1)
      redis.call('PERSIST', jk)
      redis.call('PERSIST', histkey(id))
      redis.call('HSET', jk, 'state', 'queued', 'attempt', '0', 'score', score, 'ready_at', now)
      redis.call('HDEL', jk, 'finished_at')
      redis.call('ZADD', P .. 'ready', score, id)
      if f[3] then -- its batch has a job to wait for again
        redis.call('HINCRBY', P .. 'batch:' .. f[3], 'dead', -1)
        redis.call('HINCRBY', P .. 'batch:' .. f[3], 'left', 1)
      end
      moved = moved + 1
    end
  end
  if ARGV[1] ~= '' then
    break
  end
end
count('retried', moved)
count('dropped', dropped)
wake_if(was_empty and moved > 0)
return moved
