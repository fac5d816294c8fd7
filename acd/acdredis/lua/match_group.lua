-- match_group: hand the head sessions of one group to the agents idle the
-- longest, up to a limit, reserving capacity in the same step so that no
-- session or capacity unit is given twice by concurrent nodes.
--
-- The script walks the available ZSET in order. It may only touch agent
-- hashes passed in KEYS, so Go reads the first agents of that set and passes
-- them as candidates; when the walk reaches an agent that is not a
-- candidate, the script stops with code 1 and Go calls it again with fresh
-- candidates. Agents that are not ready, are full, or no longer serve the
-- group are removed from this group's available set as they are met (lazy
-- clean-up: an agent who fills up through another group stays in this
-- group's set until a walk meets them).
--
-- KEYS[1]   -> waiting ZSET of the group (member: session id; score:
--              priority and enqueue time, lowest first)
-- KEYS[2]   -> enqueue-time HASH of the group (session id -> unix ms)
-- KEYS[3]   -> available ZSET of the group (member: agent id; score: idle
--              since, unix µs, lowest first)
-- KEYS[4..] -> agent HASH of each candidate, in the order of ARGV[4..]
-- ARGV[1]   -> now (unix µs); a matched agent moves to the tail of the
--              available set, at now or later
-- ARGV[2]   -> most assignments to make
-- ARGV[3]   -> group id, checked against the agent's groups
-- ARGV[4..] -> candidate agent ids
-- Returns: {code, session, agent, enqueued ms, score, session, agent, ...}
--   code 0: done (the queue or the agents ran out, or the limit was reached)
--   code 1: the next available agent is not a candidate; call again
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

local now = tonumber(ARGV[1])
local cand = {}
for i = 4, #ARGV do
  cand[ARGV[i]] = KEYS[i]
end
local limit = tonumber(ARGV[2])
local tag = ',' .. ARGV[3] .. ','
local out = {0}
local made = 0
while made < limit do
  local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #head == 0 then
    break
  end
  local agent, akey, amax
  while true do
    local first = redis.call('ZRANGE', KEYS[3], 0, 0)
    if #first == 0 then
      break
    end
    local key = cand[first[1]]
    if not key then
      out[1] = 1
      return out
    end
    local st = redis.call('HMGET', key, 'ready', 'load', 'max', 'groups')
    local load = tonumber(st[2]) or 0
    local max = tonumber(st[3]) or 0
    if st[1] == '1' and load < max and st[4]
        and string.find(',' .. st[4] .. ',', tag, 1, true) then
      agent, akey, amax = first[1], key, max
      break
    end
    redis.call('ZREM', KEYS[3], first[1])
  end
  if not agent then
    break
  end
  local session = head[1]
  redis.call('ZREM', KEYS[1], session)
  local ms = redis.call('HGET', KEYS[2], session) or ''
  redis.call('HDEL', KEYS[2], session)
  local load = redis.call('HINCRBY', akey, 'load', 1)
  if load >= amax then
    redis.call('ZREM', KEYS[3], agent)
  else
    redis.call('ZADD', KEYS[3], atTail(KEYS[3], now), agent)
  end
  out[#out + 1] = session
  out[#out + 1] = agent
  out[#out + 1] = ms
  out[#out + 1] = head[2]
  made = made + 1
end
return out
