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
-- ARGV[6]  poison limit, as for fail.lua (optional; absent or 0: off)
-- Reply:   {requeued, dead, canceled, more, set_aside, held, gap}: more is 1
--          when the retention trim hit its budget and should run again soon;
--          set_aside: see below; held is
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
-- set_aside lists, as a flat array of triples ('dead' or
--          'dropped', id, reason), the expired leases whose record was
--          unusable: one with no job hash behind it (or a key of another
--          type) is removed from the active set ('dropped'); a hash whose
--          attempt count is no number goes dead with the reason (it counts
--          in dead too). A score that is no ready-set score is made anew at
--          the default priority (requeue in lib.lua).
-- Retention: records older than their retention are deleted here, at most
-- TRIM_BUDGET per state set and call (succeeded records carry no TTL of
-- their own; dead and canceled ones also have a PEXPIRE from finish()).
-- An expired lease charges its attempt (it was charged at claim and is not
-- given back), so a job that keeps killing its worker ends dead, with the
-- error "lease expired on attempt N of M". A job with a pending cancel
-- request ends canceled. Its old token is void either way. A job that sets no
-- max_attempts counts against the default here (the reaper does not know the
-- handler of a job another worker held).
-- Each expired lease is recorded in the job's history (lib.lua), outcome
-- 'lease_expired' (queued again), 'dead' or 'canceled'; the trim deletes a
-- record's history with it.
local now = now_ms()
local nows = istr(now)
local ttl_ok, ttl_dead = tonumber(ARGV[2]), tonumber(ARGV[3])
local poison = tonumber(ARGV[6]) or 0
zsets_ok('active', 'ready', 'dead', 'canceled', 'succeeded')
local was_empty = redis.call('EXISTS', P .. 'ready') == 0
local requeued, dead, canceled, dropped = 0, 0, 0, 0
local notes = {}

-- The reaper clock (see Outages above).
local gap_ms, grace_ms = tonumber(ARGV[4]) or 0, tonumber(ARGV[5]) or 0
local clock = hmget(P .. 'reaper', 'last', 'hold_until')
if not clock then -- our own key, damaged: start the clock anew
  redis.call('DEL', P .. 'reaper')
  clock = {}
end
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
  local f, kind = hmget(jk, 'attempt', 'max', 'cancel', 'score', 'watch', 'state', 'checkpoint',
    'noprog', 'ck_mark', 'worker', 'started_at')
  if f and not f[6] and not f[4] then
    kind = redis.call('TYPE', jk).ok -- 'none': the record is gone
  end
  local attempt = f and int_in(f[1] or 0, 0, COUNT_MAX)
  if kind and kind ~= 'hash' then
    redis.call('ZREM', P .. 'active', id)
    notes[#notes + 1] = 'dropped'
    notes[#notes + 1] = id
    notes[#notes + 1] = kind == 'none' and 'no job record behind the active entry'
      or ('job key holds a ' .. kind .. ', not a job record')
    dropped = dropped + 1
  elseif f[3] == '1' then
    finish(id, jk, 'canceled', nows, ttl_dead)
    notify(id, f[5], 'canceled')
    history(id, f[1], f[10], f[11], nows, 'canceled', 'lease expired', ttl_dead)
    canceled = canceled + 1
  elseif not attempt then
    local why = 'job record is corrupt: attempt is ' .. shown(f[1]) .. ', not a count'
    finish(id, jk, 'dead', nows, ttl_dead, 'error', why)
    notify(id, f[5], 'dead')
    notes[#notes + 1] = 'dead'
    notes[#notes + 1] = id
    notes[#notes + 1] = why
    dead = dead + 1
  elseif attempt >= max_attempts(f[2], 0) then
    local why = 'lease expired on attempt ' .. istr(attempt) .. ' of ' .. max_attempts(f[2], 0)
    finish(id, jk, 'dead', nows, ttl_dead, 'error', why)
    notify(id, f[5], 'dead')
    history(id, f[1], f[10], f[11], nows, 'dead', why, ttl_dead)
    dead = dead + 1
  elseif no_progress(jk, f[7], f[8], f[9], poison) then
    finish(id, jk, 'dead', nows, ttl_dead, 'error', 'no progress in ' .. poison ..
      ' attempts: lease expired on attempt ' .. istr(attempt))
    notify(id, f[5], 'dead')
    history(id, f[1], f[10], f[11], nows, 'dead', 'no progress in ' .. poison .. ' attempts', ttl_dead)
    dead = dead + 1
  else
    requeue(id, jk, f[4], nows)
    notify(id, f[5], 'queued')
    history(id, f[1], f[10], f[11], nows, 'lease_expired',
      'lease expired: worker ' .. (f[10] or '?') .. ' stopped renewing it', 0)
    requeued = requeued + 1
  end
end
count('reaped', requeued)
count('dead', dead)
count('canceled', canceled)
count('dropped', dropped)
wake_if(was_empty and requeued > 0)
local TRIM_BUDGET = 5000
local more = 0
local function trim(set, ttl)
  if not ttl or ttl <= 0 then
    return
  end
  local old = redis.call('ZRANGEBYSCORE', P .. set, '-inf', now - ttl, 'LIMIT', 0, TRIM_BUDGET)
  if #old == 0 then
    return
  end
  local keys = {}
  for _, id in ipairs(old) do
    keys[#keys + 1] = jobkey(id)
    keys[#keys + 1] = histkey(id)
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
return { requeued, dead, canceled, more, notes, held, gap }
