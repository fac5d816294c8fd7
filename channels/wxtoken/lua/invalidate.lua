-- invalidate: forget a cached access token, but only if it is still the
-- one a caller saw refused, so that when every node hits 40001 at once
-- the token is deleted (and fetched again) once, not once per node.
--
-- KEYS[1] -> the token hash (fields "token", "exp")
-- ARGV[1] -> the stale token
-- Returns: 1 deleted; 0 the cached token is another one (or none).
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
