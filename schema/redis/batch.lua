-- batch.lua - adds N jobs of one queue to a named batch (jobctl submit
-- --batch FILE --name NAME): the jobs as enqueue.lua makes them, each with
-- 'batch' = NAME in its hash, and the queue's part of the batch.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  batch name
-- ARGV[2]  N
-- then per job 5 values: id, envelope JSON, priority 0..9, max_attempts,
--          run_at in ms (0: now)
-- Reply:   array, per job: 1 created, 0 not (the id exists)
-- The part: PREFIX:{Q}:batch:NAME, a hash: total, left (jobs not terminal
-- yet), succeeded, dead, canceled (counted by ack.lua and finish in
-- lib.lua, undone by retry.lua); PREFIX:{Q}:batch:NAME:ids, a list of the
-- part's job ids in order. See README.md, "Batches".
local name, n = ARGV[1], tonumber(ARGV[2])
for i = 1, n do
  local o = 3 + (i - 1) * 5
  if not int_in(ARGV[o + 2], 0, 9) or not int_in(ARGV[o + 3], 0, MAX_MAX) or
    not int_in(ARGV[o + 4], 0, 1e15) then
    return redis.error_reply('ERR jobd: batch argument out of range (job ' .. i .. ')')
  end
end
zsets_ok('ready', 'scheduled')
local now = now_ms()
local nows = istr(now)
local was_empty = redis.call('EXISTS', P .. 'ready') == 0
local seq = next_seq(n)
local out, ready, sched, ids = {}, {}, {}, {}
for i = 1, n do
  local o = 3 + (i - 1) * 5
  local id, env, prio, max, run_at = ARGV[o], ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
  local jk = jobkey(id)
  if redis.call('EXISTS', jk) == 1 then
    out[i] = 0
  else
    local score = ready_score(prio, seq + i)
    if tonumber(run_at) > now then
      redis.call('HSET', jk, 'env', env, 'state', 'scheduled', 'max', max, 'score', score,
        'run_at', run_at, 'batch', name)
      sched[#sched + 1] = run_at
      sched[#sched + 1] = id
    else
      redis.call('HSET', jk, 'env', env, 'state', 'queued', 'max', max, 'score', score,
        'ready_at', nows, 'batch', name)
      ready[#ready + 1] = score
      ready[#ready + 1] = id
    end
    ids[#ids + 1] = id
    out[i] = 1
  end
end
call_sliced('ZADD', P .. 'ready', ready, 2 * SLICE)
call_sliced('ZADD', P .. 'scheduled', sched, 2 * SLICE)
call_sliced('RPUSH', P .. 'batch:' .. name .. ':ids', ids, SLICE)
redis.call('HINCRBY', P .. 'batch:' .. name, 'total', #ids)
redis.call('HINCRBY', P .. 'batch:' .. name, 'left', #ids)
count('enqueued', #ids)
wake_if(was_empty and #ready > 0)
return out
