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
local repair = ARGV[5] ~= ''
local before = st.load
local load = before - num(ARGV[4])
if repair then load = num(ARGV[5]) end
if load < 0 then load = 0 end
call('HSET', ka(st.id), 'load', int(load))
st.load = load
loadGroups(st.groups)
-- A ready agent who had room is in every avail set of theirs already
-- (lib.lua), and freeing capacity moves them only where the load is part
-- of the score.
local had = st.ready and before < st.max
local gs = st.groups
for i = 1, #gs do
  local g = gs[i]
  if repair or not had or GC[g].scoring == 'least_busy' then
    place(st, g, 'released')
  end
end
local out = { 0, 0, 0 }
if not repair then
  matchAgent(st, out)
end
return out
