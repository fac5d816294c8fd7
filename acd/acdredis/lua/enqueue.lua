-- enqueue: put a session in a group's waiting line unless it is already
-- there (a retried handoff cannot move or double it) or the line is full,
-- then match the group at once.
--
-- ARGV[3]  -> group id
-- ARGV[4]  -> session id
-- ARGV[5]  -> enqueued at, unix ms
-- ARGV[6]  -> priority
-- ARGV[7]  -> cost
-- ARGV[8]  -> the contact's last agent ("" for none); held for only by
--             sticky groups
-- ARGV[9]  -> "1" to enqueue even when the line is full
-- ARGV[10] -> most assignments the match may make
-- Returns: {code, position, length, assignments...} with code 1 added,
--   0 already waiting, 4 refused: the line is full. Position is 0 when the
--   session was assigned at once or refused.
local g, sid = ARGV[3], ARGV[4]
local c = conf(g)
-- Room for one assignment from the start: growing a table costs more.
local out = { 1, 0, 0, nil, nil, nil, nil, nil }
-- A line P:route marks empty is not read.
local wkey, n = nil, 0
if GW[g] ~= '0' then
  wkey = kq(g, 'wait')
  n = call('ZCARD', wkey)
end
if n > 0 and call('ZSCORE', wkey, sid) then
  out[1] = 0
else
  if ARGV[9] ~= '1' and c.maxq > 0 and n >= c.maxq then
    out[1] = 4
    out[3] = n
    return out
  end
  local pref, hold = '', 0
  if c.strategy == 'sticky' and ARGV[8] ~= '' then
    pref, hold = ARGV[8], nowMs() + c.sticky
  end
  local it = { raw = ARGV[5], enq = nil, cost = num(ARGV[7]), pref = pref, hold = hold }
  local limit = num(ARGV[10])
  if n == 0 then
    setWait(g, '0')
    if limit > 0 then
      -- Nobody waits: the match is for this session alone, so it is tried
      -- before the session is stored, and one that is assigned never is.
      local st = candidate(g, c, it)
      if st then
        assign(g, sid, it, st, out, false)
        return out
      end
    end
  end
  local rank = enqOf(it) - num(ARGV[6]) * c.step
  wkey = wkey or kq(g, 'wait')
  call('ZADD', wkey, rank, sid)
  call('HSET', kq(g, 'meta'), sid, ARGV[5] .. '|' .. ARGV[7] .. '|' .. pref .. '|' .. hold)
  if pref ~= '' then
    call('ZADD', kown(pref), rank, g .. '\t' .. sid)
  end
  setWait(g, '1')
  if n == 0 then
    -- The match above found nobody; the line holds only this session.
    out[2], out[3] = 1, 1
    return out
  end
  matchGroup(g, limit, out)
end
local r = call('ZRANK', wkey, sid)
if r then out[2] = r + 1 end
out[3] = call('ZCARD', wkey)
return out
