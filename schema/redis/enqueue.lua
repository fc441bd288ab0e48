-- enqueue.lua - adds N jobs to one queue (N >= 1; a batch is one call).
--
-- KEYS[1]  queue prefix
-- ARGV[1]  idempotency key TTL in seconds
-- ARGV[2]  N
-- then per job, 6 values:
--          id, envelope JSON, priority 0..9, max_attempts,
--          run_at in ms (0: now), idempotency key ('' for none)
-- Reply:   flat array, per job: id, 1 if created or 0 if an existing job was
--          returned (same idempotency key, or the id already exists).
-- Errors:  none of its own; bad arguments are refused by the client.
local now = now_ms()
local ttl = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local was_empty = redis.call('EXISTS', P .. 'ready') == 0
local seq = redis.call('INCRBY', P .. 'seq', n) - n
local out, ready, sched = {}, {}, {}
local created = 0
for i = 0, n - 1 do
  local o = 3 + i * 6
  local id, env, prio, max = ARGV[o], ARGV[o + 1], ARGV[o + 2], ARGV[o + 3]
  local run_at, key = tonumber(ARGV[o + 4]), ARGV[o + 5]
  local first = false
  if key ~= '' then
    first = redis.call('GET', P .. 'idem:' .. key)
  end
  local jk = jobkey(id)
  if first then
    out[#out + 1] = first
    out[#out + 1] = 0
  elseif redis.call('EXISTS', jk) == 1 then
    out[#out + 1] = id
    out[#out + 1] = 0
  else
    local score = ready_score(prio, seq + i + 1)
    if run_at > now then
      redis.call('HSET', jk, 'env', env, 'state', 'scheduled', 'prio', prio, 'max', max,
        'score', score, 'attempt', 0, 'claims', 0, 'run_at', run_at, 'enq_at', now)
      sched[#sched + 1] = run_at
      sched[#sched + 1] = id
    else
      redis.call('HSET', jk, 'env', env, 'state', 'queued', 'prio', prio, 'max', max,
        'score', score, 'attempt', 0, 'claims', 0, 'ready_at', now, 'enq_at', now)
      ready[#ready + 1] = score
      ready[#ready + 1] = id
    end
    if key ~= '' then
      redis.call('SET', P .. 'idem:' .. key, id, 'EX', ttl)
    end
    created = created + 1
    out[#out + 1] = id
    out[#out + 1] = 1
  end
end
-- Lua's unpack is bounded by the C stack; 2 * N stays far below it for the
-- batch sizes the client sends (<= 1000 jobs per call).
if #ready > 0 then
  redis.call('ZADD', P .. 'ready', unpack(ready))
end
if #sched > 0 then
  redis.call('ZADD', P .. 'scheduled', unpack(sched))
end
if created > 0 then
  redis.call('HINCRBY', P .. 'stats', 'enqueued', created)
end
wake_if(was_empty and #ready > 0)
return out
