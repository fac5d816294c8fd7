-- claim: give an agent one more session outside matching (a direct transfer,
-- a returning customer's last agent) only if they are ready and below
-- capacity.
--
-- KEYS[1] -> agent HASH (max, load, ready, groups)
-- Returns: 1 claimed; 0 not ready or full; 3 the agent is unknown.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 3
end
local a = redis.call('HMGET', KEYS[1], 'max', 'load', 'ready')
local max, load = tonumber(a[1]) or 0, tonumber(a[2]) or 0
if a[3] ~= '1' or load >= max then
  return 0
end
redis.call('HINCRBY', KEYS[1], 'load', 1)
return 1
