-- ack.lua - marks many jobs of one queue succeeded, each with its result.
--
-- KEYS[1]  queue prefix
-- ARGV     per job 3 values: id, lease token, result JSON ('' for none)
-- Reply:   array, per job: 1 acked, 0 rejected (stale token: the lease was
--          lost, or the job already finished; or its key is no hash), -1
--          already acked with this token (a re-send after a lost reply:
--          success, nothing changed).
-- This is the hot path of every job, so it costs two commands per job
-- (HMGET, HSET) and moves the ids between the state sets once per call. The
-- token is blanked in the same HSET (no real token is empty), so the job is
-- fenced off exactly as finish() would do it; 'done_token' keeps it, so a
-- re-send of the same outcome (the reply was lost in a reconnect, the
-- journal sends it again) is told apart from a lost lease. Retention is not set here (a
-- PEXPIRE per job cost a fifth of Redis's time): reap.lua deletes succeeded
-- records in batches once they are older than the retention.
-- Each ack also records the attempt in the job's history (lib.lua): one
-- LPUSH, the fields read in the same HMGET.
local now = istr(now_ms())
zsets_ok('active', 'succeeded')
local out, done = {}, {}
for i = 1, #ARGV, 3 do
  local id, token, result = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local jk = jobkey(id)
  local f = hmget(jk, 'token', 'watch', 'cancel', 'done_token', 'done_reply', 'batch', 'attempt',
    'worker', 'started_at')
  if not f then -- the key is no hash
    out[#out + 1] = 0
  elseif not token_holds(f[1], token) then
    out[#out + 1] = already_applied(f[4], f[5], token, 'a')
  else
    if result ~= '' then
      redis.call('HSET', jk, 'state', 'succeeded', 'finished_at', now, 'progress', '1',
        'token', '', 'done_token', token, 'done_reply', 'a1', 'result', result)
    else
      redis.call('HSET', jk, 'state', 'succeeded', 'finished_at', now, 'progress', '1',
        'token', '', 'done_token', token, 'done_reply', 'a1')
    end
    if f[3] then
      redis.call('HDEL', jk, 'cancel')
    end
    notify(id, f[2], 'succeeded')
    if f[6] then
      batch_count(f[6], 'succeeded')
    end
    history(id, f[7], f[8], f[9], now, 'succeeded', nil, 0)
    done[#done + 1] = id
    out[#out + 1] = 1
  end
end
if #done > 0 then
  call_sliced('ZREM', P .. 'active', done, SLICE)
  local scored = {}
  for _, id in ipairs(done) do
    scored[#scored + 1] = now
    scored[#scored + 1] = id
  end
  call_sliced('ZADD', P .. 'succeeded', scored, 2 * SLICE)
end
count('succeeded', #done)
return out
