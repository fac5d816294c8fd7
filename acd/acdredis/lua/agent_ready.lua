-- agent_ready: record an agent's capacity, load and skills, make them
-- available in every group they serve (groups they no longer serve forget
-- them) and give them the waiting sessions they can take.
--
-- ARGV[3] -> agent id
-- ARGV[4] -> max sessions
-- ARGV[5] -> load
-- ARGV[6] -> idle since, unix µs
-- ARGV[7..] -> group, proficiency, weight triples
-- Returns: {0, 0, 0, assignments...}
local a = ARGV[3]
local key = ka(a)
local groups, keep = {}, {}
for i = 7, #ARGV, 3 do
  groups[#groups + 1] = ARGV[i]
  keep[ARGV[i]] = true
end
local old = redis.call('HGET', key, 'groups') or ''
for g in string.gmatch(old, '[^,]+') do
  if not keep[g] then
    redis.call('ZREM', kq(g, 'avail'), a)
    redis.call('SREM', kq(g, 'online'), a)
    redis.call('HDEL', key, 'p:' .. g, 'w:' .. g, 'pass:' .. g)
  end
end
local idleUs = tonumber(ARGV[6])
redis.call('HSET', key, 'max', ARGV[4], 'load', ARGV[5], 'ready', '1',
  'groups', table.concat(groups, ','), 'last', math.floor(idleUs / 1000), 'missed', 0)
for i = 7, #ARGV, 3 do
  redis.call('HSET', key, 'p:' .. ARGV[i], ARGV[i + 1], 'w:' .. ARGV[i], ARGV[i + 2])
  redis.call('SADD', kq(ARGV[i], 'online'), a)
end
AG[a] = nil -- written above
local st = agent(a)
st.last = math.floor(idleUs / 1000)
loadGroups(st.groups)
for _, g in ipairs(st.groups) do
  place(st, g, 'ready', nil, idleUs)
  widen(kq(g, 'avail'))
end
local out = { 0, 0, 0 }
matchAgent(st, out)
return out
