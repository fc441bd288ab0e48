-- lib.lua - shared prelude, prepended to every other script at build time.
--
-- Conventions for every script:
--   KEYS[1] is the queue's key prefix, "PREFIX:{QUEUE}:". Every key a script
--   touches is KEYS[1] plus a suffix (see README.md), so all of them share the
--   queue's hash tag and the script runs on one Redis Cluster slot.
--   Times are milliseconds on the Redis server's clock (TIME), so workers with
--   skewed clocks still agree on lease deadlines.

local P = KEYS[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Ready-set score: higher priority first, FIFO within a priority by a
-- per-queue sequence. Stays below 1e14, exact in a double and in '%d'.
local function ready_score(prio, seq)
  return string.format('%d', (9 - tonumber(prio)) * 1e13 + seq)
end

local function jobkey(id)
  return P .. 'job:' .. id
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

-- Moves a finished job into its terminal set and sets its retention.
local function finish(id, jk, state, now, ttl_ms)
  redis.call('ZREM', P .. 'active', id)
  redis.call('ZADD', P .. state, now, id)
  redis.call('HSET', jk, 'state', state, 'finished_at', now)
  redis.call('HDEL', jk, 'token', 'lease_until', 'cancel')
  if tonumber(ttl_ms) > 0 then
    redis.call('PEXPIRE', jk, ttl_ms)
  end
  redis.call('HINCRBY', P .. 'stats', state, 1)
end

-- Puts a job back at its own place in the ready set.
local function requeue(id, jk, score, now)
  redis.call('ZREM', P .. 'active', id)
  redis.call('ZADD', P .. 'ready', score, id)
  redis.call('HSET', jk, 'state', 'queued', 'ready_at', now)
  redis.call('HDEL', jk, 'token', 'lease_until')
end
