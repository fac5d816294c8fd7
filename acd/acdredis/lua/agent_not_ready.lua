-- agent_not_ready: take an agent out of routing; their load is kept so
-- that the sessions they still hold count when they come back.
--
-- KEYS[1]  -> agent HASH (max, load, ready, groups)
-- KEYS[2..] -> available ZSET of each group the agent serves
-- ARGV[1] -> agent id
-- ARGV[2] -> groups the caller read before building KEYS, comma-separated
-- Returns: 0 done; 2 the stored groups differ from ARGV[2] (read again and
--          retry); 3 the agent is unknown.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 3
end
if (redis.call('HGET', KEYS[1], 'groups') or '') ~= ARGV[2] then
  return 2
end
redis.call('HSET', KEYS[1], 'ready', '0')
for i = 2, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
return 0
