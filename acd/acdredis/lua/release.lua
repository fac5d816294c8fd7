-- release: free one unit of an agent's capacity. A ready agent who was full
-- rejoins their groups at the tail (idle since now or later); one who still
-- had room keeps their place, and is put back where lazy clean-up dropped
-- them.
--
-- KEYS[1]  -> agent HASH (max, load, ready, groups)
-- KEYS[2..] -> available ZSET of each group the agent serves
-- ARGV[1] -> agent id
-- ARGV[2] -> groups the caller read before building KEYS, comma-separated
-- ARGV[3] -> now (unix µs)
-- Returns: 0 done (also when the load was already 0); 2 the stored groups
--          differ from ARGV[2] (read again and retry); 3 the agent is unknown.

-- atTail is a score that puts a member after everyone in the available set
-- key: now, or one more than the last score when that is not older. Ties
-- would fall back to member order and let one agent win every burst.
local function atTail(key, now)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #last > 0 and tonumber(last[2]) >= now then
    return tonumber(last[2]) + 1
  end
  return now
end

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 3
end
local st = redis.call('HMGET', KEYS[1], 'groups', 'load', 'max', 'ready')
if (st[1] or '') ~= ARGV[2] then
  return 2
end
local load = tonumber(st[2]) or 0
local max = tonumber(st[3]) or 0
if load <= 0 then
  return 0
end
load = redis.call('HINCRBY', KEYS[1], 'load', -1)
if st[4] == '1' and load < max then
  local wasFull = load + 1 >= max
  for i = 2, #KEYS do
    if wasFull then
      redis.call('ZADD', KEYS[i], atTail(KEYS[i], tonumber(ARGV[3])), ARGV[1])
    else
      redis.call('ZADD', KEYS[i], 'NX', ARGV[3], ARGV[1])
    end
  end
end
return 0
