-- acquire.lua - takes units of cluster-wide resources for one job, all or
-- nothing (CONTRACT, Handlers: "resources").
--
-- KEYS[n]  resource keys PREFIX:res:{resources}:NAME (one hash tag for all,
--          so one call covers every resource a handler names)
-- ARGV[1]  holder: "<worker id>|<job id>"
-- ARGV[2]  hold in ms: a holder that stops renewing (a crashed worker) drops
--          out after this long
-- then per key 2 values: the resource's limit, the units this job needs
-- Reply:   1 held (taken now, or renewed if the holder held it already),
--          0 not enough units free (nothing taken)
-- Each key is a sorted set: member "<units>|<holder>", score its expiry.
local now = now_ms()
local holder, hold = ARGV[1], tonumber(ARGV[2])
local members = {}
local renew = true
-- Every key is checked before anything is written.
for i = 1, #KEYS do
  local t = redis.call('TYPE', KEYS[i]).ok
  if t ~= 'zset' and t ~= 'none' then
    return redis.error_reply('ERR jobd: resource key ' .. KEYS[i] .. ' holds a ' .. t ..
      ', not a sorted set')
  end
end
for i = 1, #KEYS do
  local limit, units = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local member = units .. '|' .. holder
  members[i] = member
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  if not redis.call('ZSCORE', KEYS[i], member) then
    renew = false
    local used = 0
    for _, m in ipairs(redis.call('ZRANGE', KEYS[i], 0, -1)) do
      -- A member that is no "<units>|..." (garbage) holds nothing; it
      -- drops out when its score passes.
      used = used + (tonumber(string.match(m, '^(%d+)|')) or 0)
    end
    if used + units > limit then
      return 0
    end
  end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now + hold, members[i])
end
return 1
