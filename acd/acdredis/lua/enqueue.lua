-- enqueue: put a session in a group's waiting line unless it is already
-- there, so that a retried or duplicated handoff cannot move or double it.
--
-- KEYS[1] -> waiting ZSET of the group (member: session id; score: priority
--            and enqueue time, see keys.go)
-- KEYS[2] -> enqueue-time HASH of the group (session id -> unix ms)
-- ARGV[1] -> session id
-- ARGV[2] -> score, computed in Go as an exact integer
-- ARGV[3] -> enqueued at (unix ms)
-- Returns: 1 when the session was added, 0 when it was already waiting.
if redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
