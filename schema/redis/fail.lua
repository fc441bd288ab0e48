-- fail.lua - ends failed attempts: retry later, dead, or canceled.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  retention of dead and canceled records in ms (0: keep)
-- ARGV[2]  poison limit: a job with a checkpoint whose last ARGV[2]
--          attempts each ended without a new one goes dead, "no progress
--          in N attempts" (no_progress in lib.lua; 0: off)
-- then per job 5 values: id, lease token, error text, the disposition:
--          delay >= 0: retry after that many ms if attempts remain, else dead;
--          -1: dead now (bad input, unknown type: retrying cannot help);
--          -2: canceled (the holder saw a cancel request and stopped);
--          and the caller's max_attempts for a job that sets none (0: 5).
-- Reply:   array, per job: 0 rejected (stale token), 1 retry scheduled,
--          2 dead, 3 canceled. A job with a pending cancel request ends
--          canceled whatever the disposition. A key that is no hash is
--          stale (0); an attempt count that is no number counts as out of
--          attempts (dead). -1, -2, -3: this token's failure was applied
--          already with that reply (a re-send after a lost reply;
--          'done_token' and 'done_reply' remember it).
-- Each failure is recorded in the job's history (lib.lua), outcome
-- 'failed' (retry scheduled), 'dead' or 'canceled', with the error's tail.
local now = now_ms()
local nows = istr(now)
local ttl = ARGV[1]
local poison = tonumber(ARGV[2]) or 0
zsets_ok('active', 'scheduled', 'dead', 'canceled')
local out = {}
local failed, dead, canceled = 0, 0, 0
for i = 3, #ARGV, 5 do
  local id, token, err, how = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local given_max = ARGV[i + 4]
  local jk = jobkey(id)
  local f = hmget(jk, 'token', 'watch', 'attempt', 'max', 'cancel', 'done_token',
    'done_reply', 'checkpoint', 'noprog', 'ck_mark', 'worker', 'started_at')
  -- An attempt count that is no number counts as out of attempts.
  local attempt = f and int_in(f[3] or 0, 0, COUNT_MAX) or COUNT_MAX
  how = how or -1
  if not f then -- the key is no hash
    out[#out + 1] = 0
  elseif not token_holds(f[1], token) then
    out[#out + 1] = already_applied(f[6], f[7], token, 'f')
  else
    failed = failed + 1
    if how == -2 or f[5] == '1' then
      finish(id, jk, 'canceled', nows, ttl, 'error', err, 'done_token', token, 'done_reply', 'f3')
      notify(id, f[2], 'canceled')
      history(id, f[3], f[11], f[12], nows, 'canceled', err, ttl)
      canceled = canceled + 1
      out[#out + 1] = 3
    elseif how < 0 or attempt >= max_attempts(f[4], given_max) then
      finish(id, jk, 'dead', nows, ttl, 'error', err, 'done_token', token, 'done_reply', 'f2')
      notify(id, f[2], 'dead')
      history(id, f[3], f[11], f[12], nows, 'dead', err, ttl)
      dead = dead + 1
      out[#out + 1] = 2
    elseif no_progress(jk, f[8], f[9], f[10], poison) then
      finish(id, jk, 'dead', nows, ttl, 'error', 'no progress in ' .. poison .. ' attempts: ' ..
        err, 'done_token', token, 'done_reply', 'f2')
      notify(id, f[2], 'dead')
      history(id, f[3], f[11], f[12], nows, 'dead', 'no progress in ' .. poison .. ' attempts: ' ..
        err, ttl)
      dead = dead + 1
      out[#out + 1] = 2
    else
      local run_at = istr(now + how)
      redis.call('ZREM', P .. 'active', id)
      redis.call('ZADD', P .. 'scheduled', run_at, id)
      redis.call('HSET', jk, 'state', 'scheduled', 'run_at', run_at, 'error', err,
        'done_token', token, 'done_reply', 'f1')
      redis.call('HDEL', jk, 'token', 'lease_until')
      notify(id, f[2], 'scheduled')
      history(id, f[3], f[11], f[12], nows, 'failed', err, 0)
      out[#out + 1] = 1
    end
  end
end
count('failed', failed)
count('dead', dead)
count('canceled', canceled)
return out
