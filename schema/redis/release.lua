-- release.lua - hands leases back without charging the attempt (drain,
-- handler exit 75, restart recovery), each with its newest checkpoint.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  retention of canceled records in ms (0: keep)
-- then per job 4 values: id, token, checkpoint JSON ('' keeps the stored
--          one), progress 0..1 ('' keeps the stored one)
-- Reply:   array, per job: 1 released, 3 canceled (a cancel was requested
--          while it ran), 0 rejected (stale token).
local now = now_ms()
local ttl = ARGV[1]
local was_empty = redis.call('EXISTS', P .. 'ready') == 0
local woke = false
local out = {}
for i = 2, #ARGV, 4 do
  local id, token, ckpt, progress = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local jk = jobkey(id)
  local f = redis.call('HMGET', jk, 'token', 'watch', 'score', 'cancel')
  if f[1] ~= token then
    out[#out + 1] = 0
  else
    if ckpt ~= '' then
      redis.call('HSET', jk, 'checkpoint', ckpt)
    end
    if progress ~= '' then
      redis.call('HSET', jk, 'progress', progress)
    end
    if f[4] == '1' then
      finish(id, jk, 'canceled', now, ttl)
      notify(id, f[2], 'canceled')
      out[#out + 1] = 3
    else
      local attempt = redis.call('HINCRBY', jk, 'attempt', -1)
      if attempt < 0 then
        redis.call('HSET', jk, 'attempt', 0)
      end
      requeue(id, jk, f[3], now)
      redis.call('HINCRBY', P .. 'stats', 'released', 1)
      notify(id, f[2], 'queued')
      woke = true
      out[#out + 1] = 1
    end
  end
end
wake_if(was_empty and woke)
return out
