-- match_group: hand a group's waiting sessions, best first, to the agents
-- its strategy picks, reserving capacity in the same step so that no
-- session or capacity unit is given twice by concurrent nodes.
--
-- ARGV[3] -> group id
-- ARGV[4] -> most assignments to make
-- Returns: {0, 0, 0, assignments...}
local out = { 0, 0, 0 }
matchGroup(ARGV[3], tonumber(ARGV[4]), out)
return out
