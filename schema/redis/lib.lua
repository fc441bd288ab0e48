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

-- ---- reading what Redis holds: anything may have been written there (by
-- hand, by an old or buggy client), so every script checks what it reads
-- before it writes, and never runs a command that can fail on bad data
-- after a write. Redis does not roll back a script that fails half-way. ----

-- Longest job id (JOBD_ID_LEN) and its characters ([A-Za-z0-9._:-]).
local ID_MAX = 36

-- Why id cannot be a job id, or nil if it can.
local function bad_id(id)
  if #id == 0 or #id > ID_MAX then
    return 'job id is ' .. #id .. ' characters long; the id format allows 1..' .. ID_MAX
  end
  if string.find(id, '[^%w._:%-]') then
    return 'job id has characters outside [A-Za-z0-9._:-]'
  end
  return nil
end

-- v as an integer if it is one within [lo, hi], else nil (tonumber also
-- takes "nan", "inf" and "1e999", which this refuses).
local function int_in(v, lo, hi)
  local n = tonumber(v)
  if n and n == math.floor(n) and n >= lo and n <= hi then
    return n
  end
  return nil
end

-- A stored value quoted for an error message, cut to 40 bytes.
local function shown(v)
  if not v then
    return 'absent'
  end
  if #v > 40 then
    return '"' .. string.sub(v, 1, 40) .. '..."'
  end
  return '"' .. v .. '"'
end

-- Ready-set scores are below 1e14 (ready_score).
local SCORE_MAX = 1e14 - 1
-- Attempt and claim counters; max_attempts fits a C int.
local COUNT_MAX, MAX_MAX = 1e9, 2147483647

-- Why a job hash's counters cannot be used (attempt, claims, max, score,
-- as read), or nil. Absent attempt, claims and max read as 0; the score is
-- required.
local function bad_counters(attempt, claims, max, score)
  if attempt and not int_in(attempt, 0, COUNT_MAX) then
    return 'job record is corrupt: attempt is ' .. shown(attempt) .. ', not a count'
  end
  if claims and not int_in(claims, 0, 1e15) then
    return 'job record is corrupt: claims is ' .. shown(claims) .. ', not a count'
  end
  if max and not int_in(max, 0, MAX_MAX) then
    return 'job record is corrupt: max is ' .. shown(max) .. ', not 0..' .. MAX_MAX
  end
  if not int_in(score, 0, SCORE_MAX) then
    return 'job record is corrupt: score is ' .. shown(score) .. ', not a ready-set score'
  end
  return nil
end

-- The error table e of a redis.pcall when it comes from the data (a key of
-- another type, a value that is no number); any other error (OOM, ...) is
-- raised as redis.call would have.
local function data_error(e)
  local m = e.err
  if string.find(m, '^WRONGTYPE') or string.find(m, 'not an integer') or
    string.find(m, 'overflow') or string.find(m, 'not a valid float') then
    return true
  end
  error(e)
end

-- HMGET that does not fail on a key of another type: returns the values,
-- or nil and the key's type ('string', 'list', ...).
local function hmget(jk, ...)
  local f = redis.pcall('HMGET', jk, ...)
  if f.err and data_error(f) then
    return nil, redis.call('TYPE', jk).ok
  end
  return f
end

-- Fails the call before it writes anything when a set of the queue it will
-- write is not a sorted set: no job could be moved safely then. (Called
-- first thing; raising here leaves Redis as it was.)
local function zsets_ok(...)
  for _, s in ipairs({ ... }) do
    local t = redis.call('TYPE', P .. s).ok
    if t ~= 'zset' and t ~= 'none' then
      error({ err = 'ERR jobd: key ' .. P .. s .. ' holds a ' .. t ..
        ', not a sorted set; the queue cannot be served until it is removed' })
    end
  end
end

-- Lua's unpack is bounded by the C stack (LUAI_MAXCSTACK, 8000 values in
-- Redis's Lua), so long argument lists go to Redis in slices of this many.
local SLICE = 1000

-- Attempts when neither the job nor the caller says (JOBD_DEFAULT_MAX_ATTEMPTS).
local DEFAULT_MAX_ATTEMPTS = 5

-- The job's max_attempts (hash field 'max', 0 when the job did not set one),
-- else the caller's (a worker knows its handler's), else the default.
local function max_attempts(stored, given)
  local m = int_in(stored, 1, MAX_MAX)
  if m then return m end
  m = int_in(given, 1, MAX_MAX)
  if m then return m end
  return DEFAULT_MAX_ATTEMPTS
end

-- Whether the caller's lease token holds the job, given the token its hash
-- stores (nil if none): the fence every script that takes a lease token
-- checks first (ack, fail, release, extend, checkpoint). An empty token
-- never holds: ack blanks the stored token to '', and no claim hands out an
-- empty one.
local function token_holds(stored, token)
  return token ~= '' and stored == token
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

-- The first of n new positions in the queue's FIFO sequence. A seq key
-- that is no counter (another type, not an integer, near the top of the
-- score's range) is set again past the last ready job's position instead of
-- failing the call.
local function next_seq(n)
  local k = P .. 'seq'
  local v = redis.pcall('INCRBY', k, n)
  if type(v) == 'number' and v >= n and v < 1e13 then
    return v - n
  end
  if type(v) == 'table' then
    data_error(v)
  end
  local base = 0
  local top = redis.call('ZRANGE', P .. 'ready', -1, -1, 'WITHSCORES')
  local t = top[2] and int_in(top[2], 0, SCORE_MAX)
  if t then
    base = t % 1e13
  end
  redis.call('DEL', k)
  redis.call('SET', k, istr(base + n))
  return base
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

-- Named batches (batch.lua): a job of a batch that reaches a terminal
-- state is counted in its queue's part of the batch; once none of the
-- part's jobs is left, the part waits in PREFIX:{Q}:batches:done for jobd
-- to complete the batch (schema/redis/README.md, "Batches").
local function batch_count(name, state)
  local bk = P .. 'batch:' .. name
  redis.call('HINCRBY', bk, state, 1)
  if redis.call('HINCRBY', bk, 'left', -1) == 0 then
    redis.call('SADD', P .. 'batches:done', name)
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
  if (tonumber(ttl_ms) or 0) > 0 then
    redis.call('PEXPIRE', jk, ttl_ms)
  end
  local b = redis.call('HGET', jk, 'batch')
  if b then
    batch_count(b, state)
  end
end

-- Puts a leased job back at its own place in the ready set (its score is
-- kept, so it runs before jobs queued after it). Extra field/value pairs are
-- written in the same HSET.
-- A score that is no ready-set score (damaged while the job ran) is made
-- anew at the default priority (JOBD_DEFAULT_PRIORITY), behind the jobs
-- waiting now.
local function requeue(id, jk, score, now, ...)
  if not int_in(score, 0, SCORE_MAX) then
    score = ready_score(5, next_seq(1) + 1)
    redis.call('HSET', jk, 'score', score)
  end
  redis.call('ZREM', P .. 'active', id)
  redis.call('ZADD', P .. 'ready', score, id)
  redis.call('HSET', jk, 'state', 'queued', 'ready_at', now, ...)
  redis.call('HDEL', jk, 'token', 'lease_until')
end

-- Moves a job whose record cannot be used to dead with the reason, out of
-- the set `from` too, so it stays visible (`jobctl status`, the dead set)
-- instead of vanishing. jk must hold a hash (the caller checked).
local function bury(id, jk, from, now, ttl_ms, reason)
  redis.call('ZREM', P .. from, id)
  finish(id, jk, 'dead', now, ttl_ms, 'error', reason)
end

-- ---- appended helpers (scheduling: poison detection, defer, schedules,
-- batches) ----

-- SHA-1 of the empty string: the checkpoint mark of a job that has none.
local NO_CKPT_SHA = 'da39a3ee5e6b4b0d3255bfef95601890afd80709'

-- Poison detection by missing progress. Called when an attempt of the job
-- at jk ends failed with attempts left (fail.lua, reap.lua; ckpt, noprog and
-- mark are the job's fields 'checkpoint', 'noprog' and 'ck_mark'): 'ck_mark' is
-- the SHA-1 of the checkpoint when the previous attempt ended, 'noprog'
-- how many attempts in a row ended with that same checkpoint. A changed
-- checkpoint resets the count. Returns true when the job has a checkpoint
-- (a resumable job: one that never checkpoints is left to max_attempts)
-- and its last `limit` attempts (limit > 0) all ended without a new one.
local function no_progress(jk, ckpt, noprog, mark, limit)
  local cur = ckpt and redis.sha1hex(ckpt) or NO_CKPT_SHA
  local n = 0
  if cur == (mark or NO_CKPT_SHA) then
    n = (int_in(noprog, 0, COUNT_MAX) or 0) + 1
  end
  redis.call('HSET', jk, 'noprog', istr(n), 'ck_mark', cur)
  return ckpt ~= nil and limit > 0 and n >= limit
end

-- Adds one job to the ready set, now, with no idempotency key: what
-- enqueue.lua does for one job, for the scripts that make a job of their
-- own (tick.lua, batch completion). Extra field/value pairs go into the
-- same HSET. The caller has checked the ready set (zsets_ok). Returns
-- false, writing nothing, when a key already sits at the id.
local function enqueue_one(id, env, prio, max, now, ...)
  local jk = jobkey(id)
  if redis.call('EXISTS', jk) == 1 then
    return false
  end
  local was_empty = redis.call('EXISTS', P .. 'ready') == 0
  local score = ready_score(prio, next_seq(1) + 1)
  redis.call('HSET', jk, 'env', env, 'state', 'queued', 'max', max, 'score', score,
    'ready_at', istr(now), ...)
  redis.call('ZADD', P .. 'ready', score, id)
  count('enqueued', 1)
  wake_if(was_empty)
  return true
end

-- ---- the console: per-attempt history, deleting records ----

-- PREFIX:{Q}:hist:ID, a list of the job's last HISTORY_MAX attempts, newest
-- first. Not "job:ID:history": a job id may hold ':', so that name could be
-- another job's record.
local HISTORY_MAX, ERROR_TAIL = 20, 2048

local function histkey(id)
  return P .. 'hist:' .. id
end

-- The last n bytes of s, starting on a UTF-8 character boundary.
local function utf8_tail(s, n)
  if #s <= n then
    return s
  end
  local i = #s - n + 1
  while i <= #s and string.byte(s, i) >= 0x80 and string.byte(s, i) < 0xC0 do
    i = i + 1
  end
  return string.sub(s, i)
end

-- Records the end of an attempt: one JSON object {attempt, worker,
-- started_at, ended_at (ms), outcome, error (its last 2 KiB)} pushed on the
-- job's history, trimmed to HISTORY_MAX; the history expires with the record
-- (ttl_ms > 0). A history key of another type (damaged) is replaced.
local function history(id, attempt, worker, started, ended, outcome, err, ttl_ms)
  -- Only numbers in range: cjson cannot encode inf or nan (an attempt
  -- "1e999" written by hand), and the call must not fail after its writes.
  local e = { attempt = int_in(attempt, 0, COUNT_MAX) or 0, worker = worker or '',
    started_at = int_in(started, 0, 1e15) or 0, ended_at = int_in(ended, 0, 1e15) or 0,
    outcome = outcome }
  if err and err ~= '' then
    e.error = utf8_tail(err, ERROR_TAIL)
  end
  local hk, v = histkey(id), cjson.encode(e)
  local n = redis.pcall('LPUSH', hk, v)
  if type(n) == 'table' then
    data_error(n)
    redis.call('DEL', hk)
    n = redis.call('LPUSH', hk, v)
  end
  if n > HISTORY_MAX then
    redis.call('LTRIM', hk, 0, HISTORY_MAX - 1)
  end
  if (tonumber(ttl_ms) or 0) > 0 then
    redis.call('PEXPIRE', hk, ttl_ms)
  end
end

-- Deletes job id's record, its history and its idempotency key (if that
-- key still names this job). env is the stored envelope (or nil). The
-- caller removes it from the state sets.
local function forget(id, env)
  if env then
    local key = string.match(env, ',"idempotency_key":"([^"\\]*)"[,}]')
    if key then
      local ik = P .. 'idem:' .. key
      local held = redis.pcall('GET', ik)
      if held == id then
        redis.call('DEL', ik)
      end
    end
  end
  redis.call('DEL', jobkey(id), histkey(id))
end
