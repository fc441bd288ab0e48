-- reap.lua - recovers expired leases and trims expired finished records.
-- Safe to run from every worker at once: each expired job is moved once,
-- because the first caller removes it from the active set.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  most leases to reap in this call
-- ARGV[2]  retention of succeeded records in ms (0: keep)
-- ARGV[3]  retention of dead and canceled records in ms (0: keep)
-- Reply:   {requeued, dead, canceled, more}: more is 1 when the retention
--          trim hit its budget and should run again soon
-- Retention: records older than their retention are deleted here, at most
-- TRIM_BUDGET per state set and call (succeeded records carry no TTL of
-- their own; dead and canceled ones also have a PEXPIRE from finish()).
-- An expired lease charges its attempt (it was charged at claim and is not
-- given back), so a job that keeps killing its worker ends dead, with the
-- error "lease expired on attempt N of M". A job with a pending cancel
-- request ends canceled. Its old token is void either way. A job that sets no
-- max_attempts counts against the default here (the reaper does not know the
-- handler of a job another worker held).
local now = now_ms()
local nows = istr(now)
local ttl_ok, ttl_dead = tonumber(ARGV[2]), tonumber(ARGV[3])
local was_empty = redis.call('EXISTS', P .. 'ready') == 0
local requeued, dead, canceled = 0, 0, 0
local expired = redis.call('ZRANGEBYSCORE', P .. 'active', '-inf', now, 'LIMIT', 0, ARGV[1])
for _, id in ipairs(expired) do
  local jk = jobkey(id)
  local f = redis.call('HMGET', jk, 'attempt', 'max', 'cancel', 'score', 'watch')
  if not f[4] then
    redis.call('ZREM', P .. 'active', id)
  elseif f[3] == '1' then
    finish(id, jk, 'canceled', nows, ttl_dead)
    notify(id, f[5], 'canceled')
    canceled = canceled + 1
  elseif tonumber(f[1]) >= max_attempts(f[2], 0) then
    finish(id, jk, 'dead', nows, ttl_dead,
      'error', 'lease expired on attempt ' .. f[1] .. ' of ' .. max_attempts(f[2], 0))
    notify(id, f[5], 'dead')
    dead = dead + 1
  else
    requeue(id, jk, f[4], nows)
    notify(id, f[5], 'queued')
    requeued = requeued + 1
  end
end
count('reaped', requeued)
count('dead', dead)
count('canceled', canceled)
wake_if(was_empty and requeued > 0)
local TRIM_BUDGET = 5000
local more = 0
local function trim(set, ttl)
  if ttl <= 0 then
    return
  end
  local old = redis.call('ZRANGEBYSCORE', P .. set, '-inf', now - ttl, 'LIMIT', 0, TRIM_BUDGET)
  if #old == 0 then
    return
  end
  local keys = {}
  for i, id in ipairs(old) do
    keys[i] = jobkey(id)
  end
  for i = 1, #keys, SLICE do
    redis.call('DEL', unpack(keys, i, math.min(i + SLICE - 1, #keys)))
  end
  call_sliced('ZREM', P .. set, old, SLICE)
  if #old == TRIM_BUDGET then
    more = 1
  end
end
trim('succeeded', ttl_ok)
trim('dead', ttl_dead)
trim('canceled', ttl_dead)
return { requeued, dead, canceled, more }
