-- unacquire.lua - gives back a job's units of cluster-wide resources.
--
-- KEYS[n]  resource keys, as for acquire.lua
-- ARGV[1]  holder: "<worker id>|<job id>"
-- then per key 1 value: the units it held
-- Reply:   how many of the keys held the job
local removed = 0
for i = 1, #KEYS do
  removed = removed + redis.call('ZREM', KEYS[i], ARGV[1 + i] .. '|' .. ARGV[1])
end
return removed
