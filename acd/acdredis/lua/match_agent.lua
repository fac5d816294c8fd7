-- match_agent: give one agent the waiting sessions they can take from any of
-- their groups, best first across groups (highest priority, then the
-- earliest enqueue time), up to their spare capacity, reserving it in the
-- same step.
--
-- KEYS[1]    -> agent HASH (max, load, ready, groups)
-- KEYS[3i-1] -> waiting ZSET of the agent's i-th group (i = 1..n)
-- KEYS[3i]   -> enqueue-time HASH of the i-th group
-- KEYS[3i+1] -> available ZSET of the i-th group
-- ARGV[1]    -> now (unix µs); a matched agent moves to the tail of each
--               available set, at now or later
-- ARGV[2]    -> agent id
-- ARGV[3]    -> groups the caller read before building KEYS, comma-separated
-- ARGV[4..]  -> group ids, in KEYS order
-- Returns: {code, session, group, enqueued ms, score, session, group, ...}
--   code 0: done (possibly with no assignment: not ready, full, or nothing
--           waiting)
--   code 2: the stored groups differ from ARGV[3]; read again and retry
--   code 3: the agent is unknown
--   enqueued ms is "" when the enqueue-time hash lacks the session.

-- atTail is a score that puts a member after everyone in the available set
-- key: now, or one more than the last score when that is not older. Ties
-- would fall back to member order and let one agent win every burst.
local function atTail(key, now)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #last > 0 and tonumber(last[2]) >= now then
    return tonumber(last[2]) + 1
  end
  return now
end

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {3}
end
local st = redis.call('HMGET', KEYS[1], 'groups', 'ready', 'load', 'max')
if (st[1] or '') ~= ARGV[3] then
  return {2}
end
local out = {0}
if st[2] ~= '1' then
  return out
end
local load = tonumber(st[3]) or 0
local max = tonumber(st[4]) or 0
local now = tonumber(ARGV[1])
local n = (#KEYS - 1) / 3
local made = 0
while load < max do
  local best, bestScore, bestSession, bestRaw
  for i = 1, n do
    local head = redis.call('ZRANGE', KEYS[3 * i - 1], 0, 0, 'WITHSCORES')
    if #head > 0 then
      local s = tonumber(head[2])
      if best == nil or s < bestScore then
        best, bestScore, bestSession, bestRaw = i, s, head[1], head[2]
      end
    end
  end
  if best == nil then
    break
  end
  redis.call('ZREM', KEYS[3 * best - 1], bestSession)
  local ms = redis.call('HGET', KEYS[3 * best], bestSession) or ''
  redis.call('HDEL', KEYS[3 * best], bestSession)
  load = redis.call('HINCRBY', KEYS[1], 'load', 1)
  out[#out + 1] = bestSession
  out[#out + 1] = ARGV[3 + best]
  out[#out + 1] = ms
  out[#out + 1] = bestRaw
  made = made + 1
end
if made > 0 then
  for i = 1, n do
    if load < max then
      redis.call('ZADD', KEYS[3 * i + 1], atTail(KEYS[3 * i + 1], now), ARGV[2])
    else
      redis.call('ZREM', KEYS[3 * i + 1], ARGV[2])
    end
  end
end
return out
