-- remove: take a session out of a group's waiting line (abandoned,
-- overflowed, closed) together with its metadata.
--
-- ARGV[3] -> group id
-- ARGV[4] -> session id
-- Returns: 1 when the session was waiting, 0 when it was not.
local g, sid = ARGV[3], ARGV[4]
local it = item(g, sid)
if it.pref ~= '' then
  redis.call('ZREM', kown(it.pref), g .. '\t' .. sid)
end
redis.call('HDEL', kq(g, 'meta'), sid)
return redis.call('ZREM', kq(g, 'wait'), sid)
