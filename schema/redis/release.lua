-- release.lua - hands leases back without charging the attempt (drain,
-- handler exit 75, restart recovery), each with its newest checkpoint.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  retention of canceled records in ms (0: keep)
-- then per job 4 values: id, lease token, checkpoint JSON ('' keeps the
--          stored one), progress 0..1 ('' keeps the stored one)
-- Reply:   array, per job: 1 released (queued again at its old place, so it
--          runs before jobs that came after it), 3 canceled (a cancel was
--          requested while it ran), 0 rejected (stale token, or a key that
--          is no hash); -1 or -3: this token's release was applied already
--          with that reply (a re-send after a lost reply; see 'done_token').
--          A damaged score is made anew (requeue in lib.lua).
-- Each release is recorded in the job's history (lib.lua) with the attempt
-- number the claim gave it, outcome 'released' or 'canceled'.
local now = istr(now_ms())
local ttl = ARGV[1]
zsets_ok('active', 'ready', 'canceled')
local was_empty = redis.call('EXISTS', P .. 'ready') == 0
local released, canceled = 0, 0
local out = {}
for i = 2, #ARGV, 4 do
  local id, token, ckpt, progress = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local jk = jobkey(id)
  local f = hmget(jk, 'token', 'watch', 'score', 'cancel', 'attempt', 'done_token',
    'done_reply', 'worker', 'started_at')
  if not f then -- the key is no hash
    out[#out + 1] = 0
  elseif not token_holds(f[1], token) then
    out[#out + 1] = already_applied(f[6], f[7], token, 'r')
  else
    local extra = { 'done_token', token, 'done_reply', f[4] == '1' and 'r3' or 'r1' }
    if ckpt ~= '' then
      extra[#extra + 1] = 'checkpoint'
      extra[#extra + 1] = ckpt
    end
    if progress ~= '' then
      extra[#extra + 1] = 'progress'
      extra[#extra + 1] = progress
    end
    if f[4] == '1' then
      finish(id, jk, 'canceled', now, ttl, unpack(extra))
      notify(id, f[2], 'canceled')
      history(id, f[5], f[8], f[9], now, 'canceled', nil, ttl)
      canceled = canceled + 1
      out[#out + 1] = 3
    else
      -- The claim charged this attempt; give it back.
      local attempt = math.max((int_in(f[5], 0, COUNT_MAX) or 1) - 1, 0)
      requeue(id, jk, f[3], now, 'attempt', istr(attempt), unpack(extra))
      notify(id, f[2], 'queued')
      history(id, f[5], f[8], f[9], now, 'released', nil, 0)
      released = released + 1
      out[#out + 1] = 1
    end
  end
end
count('released', released)
count('canceled', canceled)
wake_if(was_empty and released > 0)
return out
