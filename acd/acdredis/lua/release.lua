-- release: free capacity of an agent (never below zero) and give them the
-- waiting sessions they can now take.
--
-- ARGV[3] -> agent id
-- ARGV[4] -> cost to free
-- ARGV[5] -> a load to set instead ("" for none): the reconciler's repair,
--            which places the agent again and matches nothing
-- Returns: {code, 0, 0, assignments...}; code 0 done, 3 the agent is
--          unknown.
local st = agent(ARGV[3])
if not st then return { 3, 0, 0 } end
local load = st.load - tonumber(ARGV[4])
if ARGV[5] ~= '' then load = tonumber(ARGV[5]) end
if load < 0 then load = 0 end
call('HSET', ka(st.id), 'load', int(load))
st.load = load
for _, g in ipairs(st.groups) do
  place(st, g, 'released')
end
local out = { 0, 0, 0 }
if ARGV[5] == '' then
  matchAgent(st, out)
end
return out
