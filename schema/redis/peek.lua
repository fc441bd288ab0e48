-- peek.lua - a short summary of each given job, for the console's lists.
--
-- KEYS[1]  queue prefix
-- ARGV     job ids
-- Reply:   per id a flat array of 10 values: id, state ('' when there is
--          no record, or its key holds another type), attempt, progress,
--          error (its first 300 bytes), worker, started_at, finished_at
--          (ms), and from the envelope type and created_at ('' when it
--          cannot be read).
-- Read only. The envelope is not sent back whole (it may hold a 1 MiB
-- payload): the type comes first in a v1 envelope and created_at in its
-- last few hundred bytes, so neither needs the payload parsed.
local out = {}
for _, id in ipairs(ARGV) do
  local f = hmget(jobkey(id), 'state', 'attempt', 'progress', 'error', 'worker', 'started_at',
    'finished_at', 'env')
  f = f or {}
  local env = f[8] or ''
  local ty = string.match(env, '^{"v":1,"id":"[^"]*","queue":"[^"]*","type":"([^"\\]*)"') or ''
  local created = string.match(string.sub(env, -1024), '"created_at":"([^"]*)"') or ''
  local err = f[4] or ''
  if #err > 300 then
    err = string.sub(err, 1, 300)
  end
  out[#out + 1] = id
  out[#out + 1] = f[1] or ''
  out[#out + 1] = f[2] or '0'
  out[#out + 1] = f[3] or '0'
  out[#out + 1] = err
  out[#out + 1] = f[5] or ''
  out[#out + 1] = f[6] or ''
  out[#out + 1] = f[7] or ''
  out[#out + 1] = ty
  out[#out + 1] = created
end
return out
