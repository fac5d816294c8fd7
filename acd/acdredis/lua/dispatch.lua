-- dispatch: run routing operations of one tenant, in order, each as if it
-- were a script call of its own: it sees the state the ones before it
-- left, its own now and empty caches, and an error in one (a bug) ends
-- only that one. Many operations in one call share the fixed cost of a
-- script call (batch.go). scripts.go defines OPS, one function per
-- operation file taking that operation's ARGV.
--
-- KEYS[1] -> P:built (lib.lua)
-- ARGV[1] -> P
-- ARGV[2..] -> per operation: name, now (unix µs), n, then its n arguments
--              (the operation's ARGV[3..])
-- Returns: per operation, its reply, or a string with the error that
--   ended it (no operation replies with a string).
local replies = {}
local i = 2
while i <= #ARGV do
  local fn, now, n = OPS[ARGV[i]], ARGV[i + 1], tonumber(ARGV[i + 2])
  local a = { P, now }
  for j = 1, n do a[j + 2] = ARGV[i + 2 + j] end
  i = i + 3 + n
  NOW_US = tonumber(now)
  NOW_MS = math.floor(NOW_US / 1000)
  grp, agents, dirty = {}, {}, {}
  local ok, res = pcall(fn, a)
  -- Tails moved before an error still were given to agents.
  local fok, ferr = pcall(flushTails)
  if ok and not fok then ok, res = false, ferr end
  if not ok then
    if type(res) == 'table' then res = res.err end
    res = tostring(res)
  elseif res == nil then
    res = 0
  end
  replies[#replies + 1] = res
end
return replies
