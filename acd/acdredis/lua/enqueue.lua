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
local wkey = kq(g, 'wait')
local out = { 1, 0, 0 }
if redis.call('ZSCORE', wkey, sid) then
  out[1] = 0
else
  local n = redis.call('ZCARD', wkey)
  if ARGV[9] ~= '1' and c.maxq > 0 and n >= c.maxq then
    out[1] = 4
    out[3] = n
    return out
  end
  local rank = tonumber(ARGV[5]) - tonumber(ARGV[6]) * c.step
  local pref, hold = '', 0
  if c.strategy == 'sticky' and ARGV[8] ~= '' then
    pref, hold = ARGV[8], NOW_MS + c.sticky
  end
  redis.call('ZADD', wkey, rank, sid)
  redis.call('HSET', kq(g, 'meta'), sid, ARGV[5] .. '|' .. ARGV[7] .. '|' .. pref .. '|' .. hold)
  if pref ~= '' then
    redis.call('ZADD', kown(pref), rank, g .. '\t' .. sid)
  end
  matchGroup(g, tonumber(ARGV[10]), out)
end
local r = redis.call('ZRANK', wkey, sid)
if r then out[2] = r + 1 end
out[3] = redis.call('ZCARD', wkey)
return out
