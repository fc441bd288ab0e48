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
-- token "<claims>.<now>", unique per job because the claim count only grows,
-- so an older holder is fenced off (CONTRACT guarantee 2).
-- Cost per claimed job: one HMGET and one HSET.
local now = now_ms()
local nows = istr(now)
local worker, lease = ARGV[1], tonumber(ARGV[2])
local until_s = istr(now + lease)
local n, promote = tonumber(ARGV[3]), tonumber(ARGV[4])

local due = redis.call('ZRANGEBYSCORE', P .. 'scheduled', '-inf', now, 'LIMIT', 0, promote)
if #due > 0 then
  call_sliced('ZREM', P .. 'scheduled', due, SLICE)
  -- Promoted jobs queue behind what is already waiting, in run_at order.
  local seq = redis.call('INCRBY', P .. 'seq', #due) - #due
  local ready = {}
  for i, id in ipairs(due) do
    local jk = jobkey(id)
    local old = redis.call('HGET', jk, 'score')
    if old then
      local score = ready_score(score_prio(old), seq + i)
      redis.call('HSET', jk, 'state', 'queued', 'score', score, 'ready_at', nows)
      ready[#ready + 1] = score
      ready[#ready + 1] = id
    end
  end
  call_sliced('ZADD', P .. 'ready', ready, 2 * SLICE)
end

local out = { -1 }
local nxt = redis.call('ZRANGE', P .. 'scheduled', 0, 0, 'WITHSCORES')
if nxt[2] then
  out[1] = tonumber(nxt[2])
end

local got = 0
local active = {}
while got < n do
  local popped = redis.call('ZPOPMIN', P .. 'ready', n - got)
  if #popped == 0 then
    break
  end
  for i = 1, #popped, 2 do
    local id = popped[i]
    local jk = jobkey(id)
    local f = redis.call('HMGET', jk, 'env', 'checkpoint', 'attempt', 'claims')
    -- A job whose record expired or was deleted under us is skipped.
    if f[1] then
      local attempt = istr((tonumber(f[3]) or 0) + 1)
      local claims = istr((tonumber(f[4]) or 0) + 1)
      local token = claims .. '.' .. nows
      redis.call('HSET', jk, 'state', 'active', 'token', token, 'worker', worker,
        'started_at', nows, 'lease_until', until_s, 'attempt', attempt, 'claims', claims)
      active[#active + 1] = until_s
      active[#active + 1] = id
      out[#out + 1] = id
      out[#out + 1] = token
      out[#out + 1] = tonumber(attempt)
      out[#out + 1] = f[1]
      out[#out + 1] = f[2] or ''
      got = got + 1
    end
  end
end
call_sliced('ZADD', P .. 'active', active, 2 * SLICE)
count('claimed', got)
return out
