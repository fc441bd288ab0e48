-- tick.lua - enqueues a cron schedule's job for one tick, at most once per
-- tick whatever the number of jobd processes that have the schedule.
--
-- KEYS[1]  queue prefix of the schedule's queue (its hash tag)
-- ARGV[1]  schedule name
-- ARGV[2]  the tick, Unix ms
-- ARGV[3]  mode: 'run' enqueue for the tick unless it or a later one was
--          enqueued already; 'catchup' the same, except that a schedule
--          with no record yet (new) only records the tick; 'skip' record
--          the tick without enqueueing (a missed tick past the catch-up
--          window)
-- ARGV[4]  job id, ARGV[5] envelope JSON, ARGV[6] priority 0..9,
-- ARGV[7]  max_attempts (0: the job's default)
-- Reply:   {1 enqueued or 0 not, the last tick recorded before (ms, -1:
--          none)}
-- PREFIX:{Q}:schedules is a hash: NAME = last tick (ms), NAME|job = the id
-- of that tick's job, NAME|skipped = ticks missed and not enqueued (jobd
-- adds to it with HINCRBY: the caller whose call moved NAME on counts).
zsets_ok('ready')
local name, tick, mode = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local h = P .. 'schedules'
local t = redis.call('TYPE', h).ok
if t ~= 'hash' and t ~= 'none' then
  return redis.error_reply('ERR jobd: key ' .. h .. ' holds a ' .. t .. ', not a hash')
end
local last = tonumber(redis.call('HGET', h, name)) or -1
if last >= tick then
  return { 0, last }
end
redis.call('HSET', h, name, istr(tick))
if mode == 'skip' or (mode == 'catchup' and last < 0) then
  return { 0, last }
end
if not enqueue_one(ARGV[4], ARGV[5], ARGV[6], ARGV[7], now_ms()) then
  return { 0, last }
end
redis.call('HSET', h, name .. '|job', ARGV[4])
return { 1, last }
