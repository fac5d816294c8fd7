-- configure: store a group's routing settings. When the way the group
-- orders its agents changes, every logged-in agent is placed again under
-- the new order.
--
-- ARGV[3] -> group id
-- ARGV[4..] -> field, value pairs: strategy, fallback, sl (ms), weight,
--              step (ms), sticky (ms), ring (ms), maxq
-- Returns: 1 when the agents were placed again, 0 otherwise.
local g = ARGV[3]
local before = conf(g).scoring
local kv = {}
for i = 4, #ARGV do kv[#kv + 1] = ARGV[i] end
call('HSET', kq(g, 'conf'), unpack(kv))
grp[g] = nil
if conf(g).scoring == before then
  return 0
end
call('DEL', kq(g, 'avail'))
setTail(g, 0) -- the set starts again from nothing
for _, id in ipairs(call('SMEMBERS', kq(g, 'online'))) do
  local st = agent(id)
  if st then
    place(st, g, 'ready', nil, st.last * 1000)
  end
end
widen(kq(g, 'avail'))
return 1
