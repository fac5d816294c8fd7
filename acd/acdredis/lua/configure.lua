-- configure: store a group's routing settings, in its conf hash and its
-- P:route entry (lib.lua), and keep its avail set whole. When the way the
-- group orders its agents changes, every logged-in agent is placed again
-- under the new order. Otherwise every ready agent with room the set
-- lacks is put back: the set must hold them all (lib.lua), and matches
-- never check it (a release skips agents it finds with room), so drift
-- (an operation that stopped half way) is repaired here, on the
-- reconciler's pass over every group. It reads the group's logged-in
-- agents and its whole avail set.
--
-- ARGV[3] -> group id
-- ARGV[4..] -> field, value pairs: strategy, fallback, sl (ms), weight,
--              step (ms), sticky (ms), ring (ms), maxq
-- Returns: how many agents were placed: all of the group's when its order
--   changed, else those put back.
local g = ARGV[3]
local before = conf(g).scoring
local kv = {}
for i = 4, #ARGV do kv[#kv + 1] = ARGV[i] end
call('HSET', kq(g, 'conf'), unpack(kv))
local v = call('HMGET', kq(g, 'conf'), unpack(CONF))
local w = GW[g]
if w == '?' then
  -- First entry of the group: whether its line holds sessions.
  w = '0'
  if call('ZCARD', kq(g, 'wait')) > 0 then w = '1' end
end
local e = w .. packConf(v)
-- The reconciler stores every group's settings on every pass; most of
-- the time they are the same.
if e ~= GV[g] then
  call('HSET', KROUTE, g, e, ':pad', PAD)
  GC[g], GV[g], GW[g] = parseEntry(e), e, w
end
local key = kq(g, 'avail')
local placed = 0
if GC[g].scoring ~= before then
  call('DEL', key)
  for _, id in ipairs(call('SMEMBERS', kq(g, 'online'))) do
    local st = agent(id)
    if st then
      place(st, g, 'ready', nil, last(st) * 1000)
      placed = placed + 1
    end
  end
  widen(key)
  return placed
end
local have = {}
for _, id in ipairs(call('ZRANGE', key, '0', '-1')) do have[id] = true end
for _, id in ipairs(call('SMEMBERS', kq(g, 'online'))) do
  if not have[id] then
    local st = agent(id)
    if st and st.ready and st.load < st.max and serves(st, g) then
      place(st, g, 'released')
      placed = placed + 1
    end
  end
end
return placed
