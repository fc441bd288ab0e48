-- complete.lua - enqueues a batch's completion job, once.
--
-- KEYS[1]  queue prefix of the completion job's queue
-- ARGV[1]  batch name
-- ARGV[2]  job id, ARGV[3] envelope JSON (its payload: the batch's
--          summary), ARGV[4] priority, ARGV[5] max_attempts
-- Reply:   {1, id} enqueued now; {0, id} enqueued before (by this or
--          another jobd: the id of that job)
-- The mark is the field 'completion' of PREFIX:{Q}:batch:NAME in the same
-- slot as the job, so marking and enqueueing are one atomic step: a jobd
-- killed at any point either did both or neither, and whoever runs this
-- next finds the mark.
zsets_ok('ready')
local bk = P .. 'batch:' .. ARGV[1]
local t = redis.call('TYPE', bk).ok
if t ~= 'hash' and t ~= 'none' then
  return redis.error_reply('ERR jobd: key ' .. bk .. ' holds a ' .. t .. ', not a hash')
end
local done = redis.call('HGET', bk, 'completion')
if done then
  return { 0, done }
end
enqueue_one(ARGV[2], ARGV[3], ARGV[4], ARGV[5], now_ms())
redis.call('HSET', bk, 'completion', ARGV[2])
return { 1, ARGV[2] }
