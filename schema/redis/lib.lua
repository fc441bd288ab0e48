-- lib.lua - shared prelude, prepended to every other script at build time.
--
-- Conventions for every script:
--   KEYS[1] is the queue's key prefix, "PREFIX:{QUEUE}:". Every key a script
--   touches is KEYS[1] plus a suffix (see README.md), so all of them share the
--   queue's hash tag and the script runs on one Redis Cluster slot.
--   Times are milliseconds on the Redis server's clock (TIME), so workers with
--   skewed clocks still agree on lease deadlines.
--   A number handed to redis.call is formatted with printf by Redis; hot
--   loops pass strings (now_str, ARGV values) instead.

local P = KEYS[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- An integer as Redis writes it ("1700000000000", never "1.7e+12").
local function istr(n)
  return string.format('%d', n)
end

-- Ready-set score: higher priority first, FIFO within a priority by a
-- per-queue sequence. Stays below 1e14, exact in a double and in '%d'.
local function ready_score(prio, seq)
  return string.format('%d', (9 - tonumber(prio)) * 1e13 + seq)
end

-- The priority a ready-set score was made with (the job hash keeps the
-- score, not the priority).
local function score_prio(score)
  return 9 - math.floor(tonumber(score) / 1e13)
end

local function jobkey(id)
  return P .. 'job:' .. id
end

-- Lua's unpack is bounded by the C stack (LUAI_MAXCSTACK, 8000 values in
-- Redis's Lua), so long argument lists go to Redis in slices of this many.
local SLICE = 1000

-- Attempts when neither the job nor the caller says (JOBD_DEFAULT_MAX_ATTEMPTS).
local DEFAULT_MAX_ATTEMPTS = 5

-- The job's max_attempts (hash field 'max', 0 when the job did not set one),
-- else the caller's (a worker knows its handler's), else the default.
local function max_attempts(stored, given)
  local m = tonumber(stored) or 0
  if m > 0 then return m end
  m = tonumber(given) or 0
  if m > 0 then return m end
  return DEFAULT_MAX_ATTEMPTS
end

-- The reply to a token that no longer holds its job: 0 (stale: the lease
-- was lost), or -N when 'done_token' shows that this very token's outcome
-- was applied already by the same script (kind: 'a' ack, 'f' fail,
-- 'r' release), with reply N: a re-send after a lost reply, which the
-- holder takes as applied, not as a lost lease. 'done_reply' is kind .. N.
local function already_applied(done_token, done_reply, token, kind)
  if token ~= '' and done_token == token and done_reply
      and string.sub(done_reply, 1, 1) == kind then
    return -(tonumber(string.sub(done_reply, 2)) or 1)
  end
  return 0
end

-- redis.call(cmd, key, ...list) in slices of step values (keep step even for
-- score/member pairs). Returns the sum of the integer replies.
local function call_sliced(cmd, key, list, step)
  local total = 0
  for i = 1, #list, step do
    total = total + redis.call(cmd, key, unpack(list, i, math.min(i + step - 1, #list)))
  end
  return total
end

-- How many of keys exist (a key listed twice counts twice).
local function count_existing(keys)
  local total = 0
  for i = 1, #keys, SLICE do
    total = total + redis.call('EXISTS', unpack(keys, i, math.min(i + SLICE - 1, #keys)))
  end
  return total
end

-- MGET of any number of keys; a missing key gives false.
local function mget_all(keys)
  local out = {}
  for i = 1, #keys, SLICE do
    local part = redis.call('MGET', unpack(keys, i, math.min(i + SLICE - 1, #keys)))
    for j = 1, #part do
      out[#out + 1] = part[j]
    end
  end
  return out
end

-- Tells `jobctl wait` about a change, but only for jobs somebody watches, so
-- the common path pays one field read and no PUBLISH.
local function notify(id, watch, what)
  if watch == '1' then
    redis.call('PUBLISH', P .. 'ev:' .. id, what)
  end
end

-- Wakes idle workers when the ready set goes from empty to non-empty.
local function wake_if(was_empty)
  if was_empty then
    redis.call('PUBLISH', P .. 'wake', '1')
  end
end

-- Adds n to a counter of PREFIX:{QUEUE}:stats (once per call, not per job).
local function count(field, n)
  if n > 0 then
    redis.call('HINCRBY', P .. 'stats', field, n)
  end
end

-- Moves a job into its terminal set and sets its retention; the lease
-- fields go, so no token matches any more. Extra field/value pairs (result,
-- error, ...) are written in the same HSET. The caller counts it in stats.
local function finish(id, jk, state, now, ttl_ms, ...)
  redis.call('ZREM', P .. 'active', id)
  redis.call('ZADD', P .. state, now, id)
  redis.call('HSET', jk, 'state', state, 'finished_at', now, ...)
  redis.call('HDEL', jk, 'token', 'lease_until', 'cancel')
  if tonumber(ttl_ms) > 0 then
    redis.call('PEXPIRE', jk, ttl_ms)
  end
end

-- Puts a leased job back at its own place in the ready set (its score is
-- kept, so it runs before jobs queued after it). Extra field/value pairs are
-- written in the same HSET.
local function requeue(id, jk, score, now, ...)
  redis.call('ZREM', P .. 'active', id)
  redis.call('ZADD', P .. 'ready', score, id)
  redis.call('HSET', jk, 'state', 'queued', 'ready_at', now, ...)
  redis.call('HDEL', jk, 'token', 'lease_until')
end
