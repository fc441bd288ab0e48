-- unacquire.lua - gives back a job's units of cluster-wide resources.
--
-- KEYS[n]  resource keys, as for acquire.lua
-- ARGV[1]  holder: "<worker id>|<job id>"
-- then per key 1 value: the units it held
-- Reply:   how many of the keys held the job
local removed = 0
for i = 1, #KEYS do
  -- pcall: a key of another type (garbage) holds nothing of ours.
  local r = redis.pcall('ZREM', KEYS[i], ARGV[1 + i] .. '|' .. ARGV[1])
  if type(r) == 'number' then
    removed = removed + r
  else
    data_error(r)
  end
end
return removed
