-- extend.lua - extends many leases of one queue in one round trip.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  lease in ms
-- then per lease 2 values: id, lease token
-- Reply:   array, per lease: 1 extended, 2 extended but a cancel was
--          requested (the holder stops the job and fails it with -2),
--          0 lost (stale token or job no longer active).
local now = now_ms()
local until_s = istr(now + tonumber(ARGV[1]))
zsets_ok('active')
local out = {}
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local jk = jobkey(id)
  local f = hmget(jk, 'token', 'cancel')
  if not f or not token_holds(f[1], token) then -- not f: the key is no hash
    out[#out + 1] = 0
  else
    redis.call('ZADD', P .. 'active', 'XX', until_s, id)
    redis.call('HSET', jk, 'lease_until', until_s)
    out[#out + 1] = (f[2] == '1') and 2 or 1
  end
end
return out
