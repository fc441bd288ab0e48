-- acquire.lua - takes units of cluster-wide resources for one job, all or
-- nothing (CONTRACT, Handlers: "resources"): within each resource's
-- concurrency limit and within its rate, if it has one.
--
-- KEYS     2 per resource: its holds PREFIX:res:{resources}:NAME and its
--          rate's clock PREFIX:res:{resources}:NAME:rate (one hash tag for
--          all, so one call covers every resource a handler names)
-- ARGV[1]  holder: "<worker id>|<job id>"
-- ARGV[2]  hold in ms: a holder that stops renewing (a crashed worker) drops
--          out after this long
-- ARGV[3]  '1': a renewal by a holder that runs already (no rate is
--          charged, nothing is refused); '0': a first acquire
-- then per resource 4 values: the concurrency limit, the units this job
--          needs, the rate's count per window (0: no rate) and its window
--          in ms
-- Reply:   1 held (taken now, or renewed); 0 not enough units free (nothing
--          taken); -W: the rate allows it in W ms (nothing taken)
-- Holds: a sorted set per resource, member "<units>|<holder>", score its
-- expiry. Rates: GCRA without a burst, i.e. evenly spaced units: a unit
-- every window/count (T, in microseconds, rounded up). The rate key is a
-- hash: 'tat', the theoretical arrival time (Unix us) of the next unit; an
-- acquire is allowed once now >= tat and moves it to max(tat, now) +
-- units * T. So units are never closer than T, and no window of the rate's
-- length holds more than its count. A refused acquire is told when to come
-- back: at the next free turn ('next', moved on by units * T), so that N
-- jobs waiting come back one by one, each about once, instead of all asking
-- at every turn. A turn is a hint, not a claim: whoever asks first once tat
-- has passed gets in, and a job that comes back to find its turn taken
-- gets a new one.
local now = now_ms()
local now_us = now * 1000
local holder, hold, renew = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local nres = #KEYS / 2
-- Every key is checked before anything is written.
for i = 1, #KEYS do
  local t = redis.call('TYPE', KEYS[i]).ok
  local want = i % 2 == 1 and 'zset' or 'hash'
  if t ~= want and t ~= 'none' then
    return redis.error_reply('ERR jobd: resource key ' .. KEYS[i] .. ' holds a ' .. t ..
      ', not a ' .. (want == 'zset' and 'sorted set' or 'hash'))
  end
end
local members, take = {}, {}
local wait = 0
for i = 1, nres do
  local hk, rk = KEYS[2 * i - 1], KEYS[2 * i]
  local o = 4 * i
  local limit, units = tonumber(ARGV[o]), tonumber(ARGV[o + 1])
  local rate_n, rate_ms = tonumber(ARGV[o + 2]) or 0, tonumber(ARGV[o + 3]) or 0
  local member = units .. '|' .. holder
  members[i] = member
  redis.call('ZREMRANGEBYSCORE', hk, '-inf', now)
  if not redis.call('ZSCORE', hk, member) and not renew then
    local used = 0
    for _, m in ipairs(redis.call('ZRANGE', hk, 0, -1)) do
      -- A member that is no "<units>|..." (garbage) holds nothing; it
      -- drops out when its score passes.
      used = used + (tonumber(string.match(m, '^(%d+)|')) or 0)
    end
    if used + units > limit then
      return 0
    end
  end
  if rate_n > 0 and not renew then
    local t_us = math.ceil(rate_ms * 1000 / rate_n)
    local need = units * t_us
    -- A clock that is no number (garbage) starts anew.
    local c = redis.call('HMGET', rk, 'tat', 'next')
    local tat, nxt = tonumber(c[1]) or 0, tonumber(c[2]) or 0
    if tat > now_us then
      local at = math.max(tat, nxt)
      redis.call('HSET', rk, 'next', string.format('%d', at + need))
      redis.call('PEXPIRE', rk, math.ceil((at + need - now_us) / 1000) + 1000)
      local w = math.ceil((at - now_us) / 1000)
      if w > wait then
        wait = w
      end
    else
      take[#take + 1] = { rk, math.max(tat, now_us) + need, math.max(nxt, tat, now_us) }
    end
  end
end
if wait > 0 then
  return -wait
end
for i = 1, nres do
  redis.call('ZADD', KEYS[2 * i - 1], now + hold, members[i])
end
for _, t in ipairs(take) do
  -- The clock matters only until both times pass: it expires then.
  redis.call('HSET', t[1], 'tat', string.format('%d', t[2]))
  redis.call('PEXPIRE', t[1], math.ceil((math.max(t[2], t[3]) - now_us) / 1000) + 1000)
end
return 1
