-- claim: give an agent one more session outside matching (a direct
-- transfer, a returning customer's last agent) only if they are ready and
-- have room for it.
--
-- ARGV[3] -> agent id
-- ARGV[4] -> cost
-- Returns: 1 claimed; 0 not ready or no room; 3 the agent is unknown.
local st = agent(ARGV[3])
if not st then return 3 end
local cost = tonumber(ARGV[4])
if not st.ready or st.load + cost > st.max then return 0 end
assigned(st, cost)
loadGroups(st.groups)
local t
for _, g in ipairs(st.groups) do
  t = place(st, g, 'assigned', nil, nil, t)
end
return 1
