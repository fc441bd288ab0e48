-- defer.lua - hands leases back without charging the attempt, to be run
-- again after a delay: the job waits in 'scheduled', not in a worker's slot.
-- jobd defers a job whose resources are busy or rate-limited (the delay is
-- the limiter's wait) and one whose type it has no handler for (rolling
-- deploys: another worker may know it), the latter a bounded number of times.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  retention of dead and canceled records in ms (0: keep)
-- then per job 5 values: id, lease token, delay in ms (>= 0), why (kept in
--          the job's 'waiting' field, with 'waiting_until' = its run_at:
--          it holds while run_at still equals it), e.g. "rate limit of
--          resource api"), bound: 0 for none, else the job's 'passed'
--          counter is raised and once it is over the bound the job goes
--          dead with error "<why>: no worker took it in <bound> tries"
-- Reply:   array, per job: 1 deferred (scheduled at now + delay), 2 dead
--          (over the bound), 3 canceled (a cancel was pending), 0 rejected
--          (stale token, or a key that is no hash); -1, -2, -3: this token's
--          deferral was applied already with that reply ('done_token').
local now = now_ms()
local nows = istr(now)
local ttl = ARGV[1]
zsets_ok('active', 'scheduled', 'dead', 'canceled')
local deferred, dead, canceled = 0, 0, 0
local out = {}
for i = 2, #ARGV, 5 do
  local id, token, why = ARGV[i], ARGV[i + 1], ARGV[i + 3]
  local delay = int_in(ARGV[i + 2], 0, 1e12) or 1000
  local bound = int_in(ARGV[i + 4], 0, COUNT_MAX) or 0
  local jk = jobkey(id)
  local f = hmget(jk, 'token', 'watch', 'attempt', 'cancel', 'passed', 'done_token', 'done_reply')
  if not f then -- the key is no hash
    out[#out + 1] = 0
  elseif not token_holds(f[1], token) then
    out[#out + 1] = already_applied(f[6], f[7], token, 'd')
  else
    local passed = (int_in(f[5], 0, COUNT_MAX) or 0) + (bound > 0 and 1 or 0)
    -- The claim charged this attempt; give it back.
    local attempt = istr(math.max((int_in(f[3], 0, COUNT_MAX) or 1) - 1, 0))
    if f[4] == '1' then
      finish(id, jk, 'canceled', nows, ttl, 'attempt', attempt, 'done_token', token,
        'done_reply', 'd3')
      notify(id, f[2], 'canceled')
      canceled = canceled + 1
      out[#out + 1] = 3
    elseif bound > 0 and passed > bound then
      finish(id, jk, 'dead', nows, ttl, 'attempt', attempt, 'passed', istr(passed),
        'error', why .. ': no worker took it in ' .. istr(bound) .. ' tries',
        'done_token', token, 'done_reply', 'd2')
      notify(id, f[2], 'dead')
      dead = dead + 1
      out[#out + 1] = 2
    else
      local run_at = istr(now + delay)
      redis.call('ZREM', P .. 'active', id)
      redis.call('ZADD', P .. 'scheduled', run_at, id)
      redis.call('HSET', jk, 'state', 'scheduled', 'run_at', run_at, 'attempt', attempt,
        'passed', istr(passed), 'waiting', why, 'waiting_until', run_at, 'done_token', token, 'done_reply', 'd1')
      redis.call('HDEL', jk, 'token', 'lease_until')
      notify(id, f[2], 'scheduled')
      deferred = deferred + 1
      out[#out + 1] = 1
    end
  end
end
count('deferred', deferred)
count('dead', dead)
count('canceled', canceled)
return out
