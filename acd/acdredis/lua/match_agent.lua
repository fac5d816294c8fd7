-- match_agent: give one agent the waiting sessions they can take from any
-- of their groups, most urgent first, up to their spare capacity.
--
-- ARGV[3] -> agent id
-- Returns: {code, 0, 0, assignments...}; code 0 done (possibly with no
--          assignment), 3 the agent is unknown.
local st = agent(ARGV[3])
if not st then return { 3, 0, 0 } end
local out = { 0, 0, 0 }
matchAgent(st, out)
return out
