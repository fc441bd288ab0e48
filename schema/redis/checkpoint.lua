-- checkpoint.lua - stores the newest checkpoint and progress of many jobs.
--
-- KEYS[1]  queue prefix
-- then per job 4 values: id, lease token, checkpoint JSON ('' keeps the
--          stored one), progress 0..1 ('' keeps the stored one)
-- Reply:   array, per job: 1 stored, 0 rejected (stale token).
local out = {}
for i = 1, #ARGV, 4 do
  local id, token, ckpt, progress = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local jk = jobkey(id)
  local f = hmget(jk, 'token', 'watch')
  if not f or not token_holds(f[1], token) then -- not f: the key is no hash
    out[#out + 1] = 0
  else
    if ckpt ~= '' and progress ~= '' then
      redis.call('HSET', jk, 'checkpoint', ckpt, 'progress', progress)
    elseif ckpt ~= '' then
      redis.call('HSET', jk, 'checkpoint', ckpt)
    elseif progress ~= '' then
      redis.call('HSET', jk, 'progress', progress)
    end
    notify(id, f[2], progress ~= '' and ('progress:' .. progress) or 'progress')
    out[#out + 1] = 1
  end
end
return out
