-- claim.lua - promotes due scheduled jobs, then leases up to N ready jobs.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  worker id
-- ARGV[2]  lease in ms
-- ARGV[3]  N, most jobs to claim
-- ARGV[4]  most scheduled jobs to promote in this call
-- Reply:   flat array: next scheduled run_at in ms (-1: none), then per
--          claimed job 5 values: id, lease token, attempt (this claim's,
--          1-based), envelope JSON, checkpoint JSON ('' for none).
-- Each claim charges an attempt (release.lua gives it back) and gets a fresh
-- token, so an older holder is fenced off (CONTRACT guarantee 2).
local now = now_ms()
local worker, lease = ARGV[1], tonumber(ARGV[2])
local n, promote = tonumber(ARGV[3]), tonumber(ARGV[4])

local due = redis.call('ZRANGEBYSCORE', P .. 'scheduled', '-inf', now, 'LIMIT', 0, promote)
for _, id in ipairs(due) do
  redis.call('ZREM', P .. 'scheduled', id)
  local jk = jobkey(id)
  local prio = redis.call('HGET', jk, 'prio')
  if prio then
    -- A promoted job queues behind what is already waiting (FIFO by run_at).
    local score = ready_score(prio, redis.call('INCR', P .. 'seq'))
    redis.call('HSET', jk, 'state', 'queued', 'score', score, 'ready_at', now)
    redis.call('ZADD', P .. 'ready', score, id)
  end
end

local out = { -1 }
local nxt = redis.call('ZRANGE', P .. 'scheduled', 0, 0, 'WITHSCORES')
if nxt[2] then
  out[1] = tonumber(nxt[2])
end

local got = 0
while got < n do
  local popped = redis.call('ZPOPMIN', P .. 'ready', n - got)
  if #popped == 0 then
    break
  end
  for i = 1, #popped, 2 do
    local id = popped[i]
    local jk = jobkey(id)
    local f = redis.call('HMGET', jk, 'env', 'checkpoint')
    -- A job whose record expired or was deleted under us is skipped.
    if f[1] then
      local attempt = redis.call('HINCRBY', jk, 'attempt', 1)
      local token = redis.call('HINCRBY', jk, 'claims', 1) .. '.' .. now
      redis.call('HSET', jk, 'state', 'active', 'token', token, 'worker', worker,
        'started_at', now, 'lease_until', now + lease)
      redis.call('ZADD', P .. 'active', now + lease, id)
      out[#out + 1] = id
      out[#out + 1] = token
      out[#out + 1] = attempt
      out[#out + 1] = f[1]
      out[#out + 1] = f[2] or ''
      got = got + 1
    end
  end
end
if got > 0 then
  redis.call('HINCRBY', P .. 'stats', 'claimed', got)
end
return out
