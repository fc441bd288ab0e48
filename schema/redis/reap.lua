-- reap.lua - recovers expired leases and trims expired finished records.
-- Safe to run from every worker at once: each expired job is moved once,
-- because the first caller removes it from the active set.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  most leases to reap in this call
-- ARGV[2]  retention of succeeded records in ms (0: keep)
-- ARGV[3]  retention of dead and canceled records in ms (0: keep)
-- Reply:   {requeued, dead, canceled}
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
-- Finished records expire by PEXPIRE; drop their ids from the state sets too.
if ttl_ok > 0 then
  redis.call('ZREMRANGEBYSCORE', P .. 'succeeded', '-inf', now - ttl_ok)
end
if ttl_dead > 0 then
  redis.call('ZREMRANGEBYSCORE', P .. 'dead', '-inf', now - ttl_dead)
  redis.call('ZREMRANGEBYSCORE', P .. 'canceled', '-inf', now - ttl_dead)
end
return { requeued, dead, canceled }
