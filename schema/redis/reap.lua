-- reap.lua - recovers expired leases and trims expired finished records.
-- Safe to run from every worker at once: each expired job is moved once,
-- because the first caller removes it from the active set.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  most leases to reap in this call
-- ARGV[2]  retention of succeeded records in ms (0: keep)
-- ARGV[3]  retention of dead and canceled records in ms (0: keep)
-- ARGV[4]  outage gap in ms (optional; absent or 0: this caller does not
--          keep the reaper clock, but honours a hold already set)
-- ARGV[5]  outage grace in ms (optional, with ARGV[4])
-- Reply:   {requeued, dead, canceled, more, held, gap}: more is 1 when the
--          retention trim hit its budget and should run again soon; held is
--          how many ms lease expiry stays on hold (0: none); gap is the
--          silence in ms this call found when it set a hold (-1: there was
--          no clock yet; 0: it set none)
-- Outages: a lease that expired while Redis was away (paused, restarting)
-- must not be reaped before its holder's queued extension and journaled
-- outcome arrive. PREFIX:{Q}:reaper keeps 'last', the time of the previous
-- reap by a caller passing ARGV[4]. Such callers reap every lease/3 at most,
-- so a silence over ARGV[4] means nobody could reap: Redis was away (or
-- every worker was; a missing clock counts as such a silence, as nothing is
-- known of the time before). Then no lease expires for ARGV[5] ms ('hold_until'),
-- which gives holders time to reconnect and extend or report first. Every
-- caller honours the hold; the retention trim is not held.
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

-- The reaper clock (see Outages above).
local gap_ms, grace_ms = tonumber(ARGV[4]) or 0, tonumber(ARGV[5]) or 0
local clock = redis.call('HMGET', P .. 'reaper', 'last', 'hold_until')
local hold_until, gap = tonumber(clock[2]) or 0, 0
if gap_ms > 0 then
  -- No clock yet (a new queue, or the key was deleted) proves nothing about
  -- the time before: hold as after an outage.
  local last = tonumber(clock[1])
  if (not last or now - last > gap_ms) and now + grace_ms > hold_until then
    gap = last and now - last or -1
    hold_until = now + grace_ms
    redis.call('HSET', P .. 'reaper', 'last', nows, 'hold_until', istr(hold_until))
  else
    redis.call('HSET', P .. 'reaper', 'last', nows)
  end
end
local held = math.max(hold_until - now, 0)

local expired = {}
if held == 0 then
  expired = redis.call('ZRANGEBYSCORE', P .. 'active', '-inf', now, 'LIMIT', 0, ARGV[1])
end
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
return { requeued, dead, canceled, more, held, gap }
