-- dispatch: the body of route(KEYS, ARGV), the program's entry point. It
-- runs routing operations of one tenant, in order, each as if it were a
-- call of its own: it sees the state the ones before it left, its own
-- now, and an error in one (a bug) ends only that one. Many operations in
-- one call share the fixed cost of a call (batch.go) and the caches of
-- lib.lua. scripts.go defines OPS, one function per operation file taking
-- that operation's ARGV.
--
-- KEYS[1] -> P:built (lib.lua)
-- ARGV[1] -> P
-- ARGV[2..] -> per operation: name, now (unix µs), n, then its n arguments
--              (the operation's ARGV[3..])
-- Returns: per operation, its reply, or a string with the error that
--   ended it (no operation replies with a string).
call = redis.call
P = ARGV[1]
KROUTE = P .. ':route'
resetCaches()
TAIL, TAIL_MOVED = nil, false
if NPC > MAXPURE then PC, NPC = {}, 0 end
if NGL > MAXPURE then GL, NGL = {}, 0 end
if NNUMS > MAXPURE then NUMS, NNUMS = {}, 0 end
local replies = {}
-- One ARGV table for every operation: filling it costs less than a new one.
local a, alen = {}, 0
local i, argc = 2, #ARGV
while i <= argc do
  local fn, now, n = OPS[ARGV[i]], ARGV[i + 1], num(ARGV[i + 2])
  a[1], a[2] = P, now
  for j = 1, n do a[j + 2] = ARGV[i + 2 + j] end
  for j = n + 3, alen do a[j] = nil end
  alen = n + 2
  i = i + 3 + n
  NOW, NOW_US, NOW_MS, NOW_S = now, nil, nil, nil
  local ok, res = pcall(fn, a)
  if i > argc then
    -- The tail is written once, with the last operation; it moved also
    -- for scores an operation gave before it failed.
    local fok, ferr = pcall(flushTail)
    if ok and not fok then ok, res = false, ferr end
  end
  if not ok then
    resetCaches()
    if type(res) == 'table' then res = res.err end
    res = tostring(res)
  elseif res == nil then
    res = 0
  end
  replies[#replies + 1] = res
end
return replies
