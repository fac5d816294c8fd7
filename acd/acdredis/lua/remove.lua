-- remove: take a session out of a group's waiting line (abandoned,
-- overflowed, closed) together with its enqueue time.
--
-- KEYS[1] -> waiting ZSET of the group
-- KEYS[2] -> enqueue-time HASH of the group
-- ARGV[1] -> session id
-- Returns: 1 when the session was waiting, 0 when it was not.
local n = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return n
