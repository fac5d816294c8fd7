-- reserve: count one more session for an agent who got it outside matching
-- (a direct transfer). Capacity is not checked; matching skips an agent at
-- or over capacity and drops them from available sets lazily.
--
-- KEYS[1] -> agent HASH (max, load, ready, groups)
-- Returns: 0 done; 3 the agent is unknown.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 3
end
redis.call('HINCRBY', KEYS[1], 'load', 1)
return 0
