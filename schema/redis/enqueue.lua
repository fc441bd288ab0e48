-- enqueue.lua - adds N jobs to one queue (N >= 1; a batch is a few calls).
--
-- KEYS[1]  queue prefix
-- ARGV[1]  idempotency key TTL in seconds
-- ARGV[2]  N
-- ARGV[3]  '1': some ids were chosen by the caller, check whether they exist;
--          '0': every id is a fresh UUIDv7 made by the client (unique by
--          time, counter and 62 random bits), so no check is made, as BullMQ
--          does for its generated ids
-- ARGV[4]  W, values per job: 6 or 2
-- W = 6:   per job, 6 values from ARGV[5]:
--          id, envelope JSON, priority 0..9, max_attempts,
--          run_at in ms (0: now), idempotency key ('' for none)
-- W = 2:   the jobs share priority, max_attempts and run_at, given once in
--          ARGV[5..7], and have no idempotency key; per job, 2 values from
--          ARGV[8]: id, envelope JSON (the common case of a batch, in a
--          third of the arguments)
-- Reply:   array, one value per job: 1 created; 0 not created because the
--          id exists already; or a string, the id of the job that first used
--          the same idempotency key (not created).
-- Errors:  arguments the client would have refused (a priority outside
--          0..9, a run_at or max that is no number), before anything is
--          written. A job key that exists with another type than a hash
--          (garbage) counts as an existing id: reply 0, nothing written
--          there, whether or not the ids were checked.
--
-- Cost per new job: one HSET of five fields (plus a SET with an idempotency
-- key). Existence checks, when needed, are one EXISTS and one MGET for the
-- whole call.
local now = now_ms()
local nows = istr(now)
local ttl = ARGV[1]
local n = tonumber(ARGV[2])
local check_ids = ARGV[3] == '1'
local w = tonumber(ARGV[4])
local first_arg = w == 2 and 8 or 5
-- Checked before anything is written: a bad value found half-way would
-- leave the jobs before it in no set.
for i = 1, (w == 2 and 1 or n) do
  local o = w == 2 and 5 or (first_arg + (i - 1) * w + 2)
  if not int_in(ARGV[o], 0, 9) or not int_in(ARGV[o + 1], 0, MAX_MAX) or
    not int_in(ARGV[o + 2], 0, 1e15) then
    return redis.error_reply('ERR jobd: enqueue argument out of range (job ' .. i .. ')')
  end
end
zsets_ok('ready', 'scheduled')
local was_empty = redis.call('EXISTS', P .. 'ready') == 0
local seq = next_seq(n)

local jks, iks, ilist = {}, {}, {}
for i = 1, n do
  local o = first_arg + (i - 1) * w
  jks[i] = P .. 'job:' .. ARGV[o]
  if w == 6 and ARGV[o + 5] ~= '' then
    iks[i] = P .. 'idem:' .. ARGV[o + 5]
    ilist[#ilist + 1] = iks[i]
  end
end
local some_exist = check_ids and count_existing(jks) > 0
local firsts = {} -- idempotency key -> id of the job that holds it
if #ilist > 0 then
  local vals = mget_all(ilist)
  for j = 1, #ilist do
    if vals[j] then
      firsts[ilist[j]] = vals[j]
    end
  end
end

local out, ready, sched, made = {}, {}, {}, {}
local created = 0
local prio, max, run_at = ARGV[5], ARGV[6], ARGV[7]
for i = 1, n do
  local o = first_arg + (i - 1) * w
  local id, env = ARGV[o], ARGV[o + 1]
  if w == 6 then
    prio, max, run_at = ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
  end
  local jk, ik = jks[i], iks[i]
  local first = ik and firsts[ik]
  if first then
    out[i] = first
  elseif check_ids and (made[jk] or (some_exist and redis.call('EXISTS', jk) == 1)) then
    out[i] = 0
  else
    local score = ready_score(prio, seq + i)
    -- 'attempt' is absent until the first claim (read as 0). pcall: a key
    -- of another type under the id is garbage, left alone (reply 0).
    local later = tonumber(run_at) > now
    local r
    if later then
      r = redis.pcall('HSET', jk, 'env', env, 'state', 'scheduled', 'max', max, 'score', score,
        'run_at', run_at)
    else
      r = redis.pcall('HSET', jk, 'env', env, 'state', 'queued', 'max', max, 'score', score,
        'ready_at', nows)
    end
    if type(r) == 'table' and data_error(r) then
      out[i] = 0
    else
      if later then
        sched[#sched + 1] = run_at
        sched[#sched + 1] = id
      else
        ready[#ready + 1] = score
        ready[#ready + 1] = id
      end
      if ik then
        redis.call('SET', ik, id, 'EX', ttl)
        firsts[ik] = id
      end
      if check_ids then
        made[jk] = true
      end
      created = created + 1
      out[i] = 1
    end
  end
end
call_sliced('ZADD', P .. 'ready', ready, 2 * SLICE)
call_sliced('ZADD', P .. 'scheduled', sched, 2 * SLICE)
count('enqueued', created)
wake_if(was_empty and #ready > 0)
return out
