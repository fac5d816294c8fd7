-- missed: count an offer the agent let expire; at the limit the agent is
-- made not ready and the count starts again. A limit of 0 never does.
--
-- ARGV[3] -> agent id
-- ARGV[4] -> limit; ARGV[5] -> "1" to reset the count instead (accepted)
-- Returns: {count, 1 if made not ready else 0}; {-1, 0} when unknown.
local st = agent(ARGV[3])
if not st then return { -1, 0 } end
if ARGV[5] == '1' then
  redis.call('HSET', ka(st.id), 'missed', 0)
  return { 0, 0 }
end
local n = redis.call('HINCRBY', ka(st.id), 'missed', 1)
local limit = tonumber(ARGV[4])
if limit > 0 and n >= limit then
  redis.call('HSET', ka(st.id), 'ready', '0', 'missed', 0)
  st.ready = false
  for _, g in ipairs(st.groups) do
    redis.call('ZREM', kq(g, 'avail'), st.id)
  end
  return { n, 1 }
end
return { n, 0 }
