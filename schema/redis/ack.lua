-- ack.lua - marks many jobs of one queue succeeded, each with its result.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  retention of succeeded records in ms (0: keep)
-- then per job 3 values: id, lease token, result JSON ('' for none)
-- Reply:   array, per job: 1 acked, 0 rejected (stale token: the lease was
--          lost, or the job already finished).
local now = istr(now_ms())
local ttl = ARGV[1]
local out = {}
local acked = 0
for i = 2, #ARGV, 3 do
  local id, token, result = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local jk = jobkey(id)
  local f = redis.call('HMGET', jk, 'token', 'watch')
  if f[1] ~= token then
    out[#out + 1] = 0
  else
    if result ~= '' then
      finish(id, jk, 'succeeded', now, ttl, 'progress', '1', 'result', result)
    else
      finish(id, jk, 'succeeded', now, ttl, 'progress', '1')
    end
    notify(id, f[2], 'succeeded')
    acked = acked + 1
    out[#out + 1] = 1
  end
end
count('succeeded', acked)
return out
