-- agent_ready: record an agent's capacity, load and groups and make them
-- available in every group they serve; groups they no longer serve forget
-- them.
--
-- KEYS[1]         -> agent HASH (max, load, ready, groups)
-- KEYS[2..n+1]    -> available ZSET of each group the agent serves now
-- KEYS[n+2..]     -> available ZSET of each group the agent served before
--                    and serves no more
-- ARGV[1] -> agent id
-- ARGV[2] -> max sessions
-- ARGV[3] -> load (sessions held now)
-- ARGV[4] -> idle since (unix µs), the score in the available sets
-- ARGV[5] -> groups to store, comma-separated
-- ARGV[6] -> n, the number of groups the agent serves now
-- ARGV[7] -> groups the caller read before building KEYS, comma-separated
-- Returns: 0 done; 2 the stored groups differ from ARGV[7] (KEYS are stale:
--          read again and retry).
if (redis.call('HGET', KEYS[1], 'groups') or '') ~= ARGV[7] then
  return 2
end
local n = tonumber(ARGV[6])
for i = n + 2, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
redis.call('HSET', KEYS[1], 'max', ARGV[2], 'load', ARGV[3], 'ready', '1',
  'groups', ARGV[5])
local room = tonumber(ARGV[3]) < tonumber(ARGV[2])
for i = 2, n + 1 do
  if room then
    redis.call('ZADD', KEYS[i], ARGV[4], ARGV[1])
  else
    redis.call('ZREM', KEYS[i], ARGV[1])
  end
end
return 0
