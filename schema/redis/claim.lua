-- claim.lua - promotes due scheduled jobs, then leases up to N ready jobs.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  worker id
-- ARGV[2]  lease in ms
-- ARGV[3]  N, most jobs to claim
-- ARGV[4]  most scheduled jobs to promote in this call
-- ARGV[5]  largest envelope in bytes a worker takes (0: any)
-- ARGV[6]  retention of dead records in ms (0: keep), for jobs set aside
-- Reply:   flat array: next scheduled run_at in ms (-1: none); then what was
--          set aside, as a flat array of triples: 'dead' or 'dropped', id,
--          reason; then per claimed job 5 values: id, lease token, attempt
--          (this claim's, 1-based), envelope JSON, checkpoint JSON ('' for
--          none).
-- Each claim charges an attempt (release.lua gives it back) and gets a fresh
-- token "<claims>.<now>", unique per job because the claim count only grows,
-- so an older holder is fenced off (CONTRACT guarantee 2).
-- Nothing a worker cannot run is handed out, and nothing vanishes: a job
-- whose record is unusable (no envelope, an envelope over the size limit, an
-- id the id format does not allow, counters that are no numbers) goes to
-- dead with the reason, without running; an entry with no job hash behind it
-- is removed from its set and reported as 'dropped'. Both are checked before
-- anything is written, so a bad entry never makes the call fail half-way.
-- Cost per claimed job: one HMGET and one HSET (and one EXISTS per call,
-- for the pause flag).
local now = now_ms()
local nows = istr(now)
local worker, lease = ARGV[1], tonumber(ARGV[2])
local until_s = istr(now + lease)
local n, promote = tonumber(ARGV[3]), tonumber(ARGV[4])
local env_max = tonumber(ARGV[5]) or 0
local ttl_dead = ARGV[6] or '0'
-- A paused queue (pause.lua) hands out nothing and promotes nothing; jobs
-- already leased run on. The reply is that of an empty queue with nothing
-- scheduled, so workers wait for resume's wake-up.
if redis.call('EXISTS', P .. 'paused') == 1 then
  return { -1, {} }
end
zsets_ok('scheduled', 'ready', 'active', 'dead')

local notes = {}
local buried, dropped = 0, 0
local function note(what, id, why)
  notes[#notes + 1] = what
  notes[#notes + 1] = id
  notes[#notes + 1] = why
end
-- An entry of `from` whose record is missing or not a hash (kind: its
-- type): removed from the set, reported.
local function drop(id, from, kind)
  redis.call('ZREM', P .. from, id)
  note('dropped', id, kind == 'none' and ('no job record behind the ' .. from .. ' entry')
    or ('job key holds a ' .. kind .. ', not a job record'))
  dropped = dropped + 1
end
local function dead(id, jk, from, why, watch)
  bury(id, jk, from, nows, ttl_dead, why)
  notify(id, watch, 'dead')
  note('dead', id, why)
  buried = buried + 1
end
-- The type of jk when HMGET gave no envelope or score: 'hash' if it is a
-- hash that lacks the field, else its type ('none': no record).
local function kind_of(jk, kind)
  return kind or redis.call('TYPE', jk).ok
end

local due = redis.call('ZRANGEBYSCORE', P .. 'scheduled', '-inf', now, 'LIMIT', 0, promote)
if #due > 0 then
  -- Read and check every due job first; then move them.
  local f, kinds = {}, {}
  for i, id in ipairs(due) do
    f[i], kinds[i] = hmget(jobkey(id), 'score', 'watch')
  end
  local seq = next_seq(#due)
  -- Promoted jobs queue behind what is already waiting, in run_at order.
  local ready = {}
  for i, id in ipairs(due) do
    local jk = jobkey(id)
    local kind = (not f[i] or not f[i][1]) and kind_of(jk, kinds[i]) or 'hash'
    if kind ~= 'hash' then
      drop(id, 'scheduled', kind)
    elseif not int_in(f[i][1], 0, SCORE_MAX) then
      dead(id, jk, 'scheduled', 'job record is corrupt: score is ' .. shown(f[i][1]) ..
        ', not a ready-set score', f[i][2])
    else
      redis.call('ZREM', P .. 'scheduled', id)
      local score = ready_score(score_prio(f[i][1]), seq + i)
      redis.call('HSET', jk, 'state', 'queued', 'score', score, 'ready_at', nows)
      ready[#ready + 1] = score
      ready[#ready + 1] = id
    end
  end
  call_sliced('ZADD', P .. 'ready', ready, 2 * SLICE)
end

local out = { -1, notes }
local nxt = redis.call('ZRANGE', P .. 'scheduled', 0, 0, 'WITHSCORES')
local nxt_at = nxt[2] and int_in(math.floor(tonumber(nxt[2]) or -1), 0, 1e15)
if nxt_at then
  out[1] = nxt_at
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
    local f, kind = hmget(jk, 'env', 'checkpoint', 'attempt', 'claims', 'max', 'score', 'watch')
    if not f or not f[1] then
      kind = kind_of(jk, kind)
    end
    local why
    if kind and kind ~= 'hash' then
      drop(id, 'ready', kind)
    else
      if not f[1] then
        why = 'job record has no envelope'
      elseif env_max > 0 and #f[1] > env_max then
        why = 'envelope is ' .. #f[1] .. ' bytes, over the ' .. istr(env_max) ..
          '-byte limit; not run'
      else
        why = bad_id(id) or bad_counters(f[3], f[4], f[5], f[6])
      end
      if why then
        dead(id, jk, 'ready', why, f[7])
      else
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
end
call_sliced('ZADD', P .. 'active', active, 2 * SLICE)
count('claimed', got)
count('dead', buried)
count('dropped', dropped)
return out
