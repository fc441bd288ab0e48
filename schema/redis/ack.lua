-- ack.lua - marks many jobs of one queue succeeded, each with its result.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  retention of succeeded records in ms (0: keep)
-- then per job 3 values: id, token, result JSON ('' for none)
-- Reply:   array, per job: 1 acked, 0 rejected (stale token).
local now = now_ms()
local ttl = ARGV[1]
local out = {}
for i = 2, #ARGV, 3 do
  local id, token, result = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local jk = jobkey(id)
  local f = redis.call('HMGET', jk, 'token', 'watch')
  if f[1] ~= token then
    out[#out + 1] = 0
  else
    if result ~= '' then
      redis.call('HSET', jk, 'result', result, 'progress', 1)
    else
      redis.call('HSET', jk, 'progress', 1)
    end
    finish(id, jk, 'succeeded', now, ttl)
    notify(id, f[2], 'succeeded')
    out[#out + 1] = 1
  end
end
return out
