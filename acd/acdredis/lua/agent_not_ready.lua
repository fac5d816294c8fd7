-- agent_not_ready: take an agent out of routing; their load is kept so the
-- sessions they still hold count when they come back. An agent going
-- offline also leaves the groups' logged-in sets.
--
-- ARGV[3] -> agent id
-- ARGV[4] -> "1" when the agent goes offline
-- Returns: 0 done; 3 the agent is unknown.
local st = agent(ARGV[3])
if not st then return 3 end
redis.call('HSET', ka(st.id), 'ready', '0')
st.ready = false
for _, g in ipairs(st.groups) do
  redis.call('ZREM', kq(g, 'avail'), st.id)
  if ARGV[4] == '1' then
    redis.call('SREM', kq(g, 'online'), st.id)
  else
    redis.call('SADD', kq(g, 'online'), st.id)
  end
end
return 0
