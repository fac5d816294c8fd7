-- lib: shared by every routing script; scripts.go prepends it to each one.
-- Every script is called with
--   KEYS[1] -> the tenant's marker key P:built; it names the tenant's hash
--              slot, and every key a script touches carries the same
--              {tenant} hash tag, so scripts stay in one Redis Cluster slot
--   ARGV[1] -> P, the tenant's key prefix "<prefix>:{tenant}"
--   ARGV[2] -> now, unix µs
-- and its own arguments from ARGV[3] on.
--
-- Keys (built here and in keys.go, nowhere else):
--   P:q:<g>:conf    HASH  routing settings of group g (configure.lua)
--   P:q:<g>:wait    ZSET  session -> rank: enqueued ms - priority * step ms
--   P:q:<g>:meta    HASH  session -> "enqueued ms|cost|held for agent|held until ms"
--   P:q:<g>:avail   ZSET  agent -> strategy score, lowest goes first; may
--                         hold agents who since became full or not ready
--                         (dropped when a walk meets them)
--   P:q:<g>:online  SET   agents logged in with the skill
--   P:q:<g>:ord     HASH  agent -> round-robin ordinal; "#" the counter
--   P:q:<g>:served  HASH  unix minute -> assignments (service rate)
--   P:agent:<a>     HASH  max, load, ready, groups (csv), last (ms),
--                         missed, p:<g> proficiency, w:<g> weight,
--                         pass:<g> weighted pass
--   P:agent:<a>:own ZSET  "<g>\t<session>" -> rank: sessions a sticky
--                         group holds for the agent
--
-- Numbers: ms values (13 digits) may be concatenated into strings; µs
-- values (16 digits) are only passed to redis.call as numbers, which
-- Redis converts without loss (Lua's own tostring keeps 14 digits).

local P = ARGV[1]
local NOW_US = tonumber(ARGV[2])
local NOW_MS = math.floor(NOW_US / 1000)

-- BAND separates a score's coarse part (load, proficiency) from its ms
-- time part; ms stay below it until 2286.
local BAND = 10000000000000
-- STRIDE is the weighted pass advance of a weight-1 agent.
local STRIDE = 1000000

local function kq(g, s) return P .. ':q:' .. g .. ':' .. s end
local function ka(a) return P .. ':agent:' .. a end
local function kown(a) return P .. ':agent:' .. a .. ':own' end

local confs = {}
-- conf reads a group's settings once per script run, with defaults for a
-- group never configured.
local function conf(g)
  local c = confs[g]
  if c then return c end
  local v = redis.call('HMGET', kq(g, 'conf'), 'strategy', 'fallback', 'sl',
    'weight', 'step', 'sticky', 'ring', 'maxq')
  c = {
    strategy = v[1] or 'longest_idle', fallback = v[2] or 'longest_idle',
    sl = tonumber(v[3]) or 20000, weight = tonumber(v[4]) or 1,
    step = tonumber(v[5]) or 60000, sticky = tonumber(v[6]) or 30000,
    ring = tonumber(v[7]) or 15000, maxq = tonumber(v[8]) or 0,
  }
  if c.sl <= 0 then c.sl = 1 end
  if c.ring <= 0 then c.ring = 1 end
  -- A sticky group orders its agents by its fallback strategy.
  c.scoring = c.strategy
  if c.strategy == 'sticky' then c.scoring = c.fallback end
  confs[g] = c
  return c
end

local agents = {}
-- agent reads an agent's routing state once per script run; nil when
-- routing does not know the agent. Scripts keep the cached load current.
local function agent(a)
  local st = agents[a]
  if st then return st end
  local v = redis.call('HMGET', ka(a), 'ready', 'load', 'max', 'groups', 'last')
  if not v[3] then return nil end
  st = { id = a, ready = v[1] == '1', load = tonumber(v[2]) or 0,
    max = tonumber(v[3]) or 0, last = tonumber(v[5]) or 0, groups = {}, gset = {} }
  for g in string.gmatch(v[4] or '', '[^,]+') do
    st.groups[#st.groups + 1] = g
    st.gset[g] = true
  end
  agents[a] = st
  return st
end

local function field(st, name, default)
  return tonumber(redis.call('HGET', ka(st.id), name) or '') or default
end

-- minProf is the lowest proficiency a skills group admits after waitMs.
local function minProf(c, waitMs)
  if c.strategy ~= 'skills' then return 1 end
  local p = 5 - math.floor(waitMs / c.ring)
  if p < 1 then return 1 end
  return p
end

-- atTail is a score after every member of key, at least base: ties would
-- fall back to member order and let one agent win every burst.
local function atTail(key, base)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #last > 0 and tonumber(last[2]) >= base then
    return tonumber(last[2]) + 1
  end
  return base
end

-- place keeps agent st's entry in group g's avail set right after an
-- event: 'assigned' (st got a session of group ag), 'released' or 'ready'
-- (idleUs: the idle-since time to record).
local function place(st, g, event, ag, idleUs)
  local key = kq(g, 'avail')
  local s = conf(g).scoring
  -- The rotation and the weighted pass advance with every assignment in
  -- the group, also one that fills the agent up.
  local ord, pass
  if s == 'round_robin' then
    ord = redis.call('HGET', kq(g, 'ord'), st.id)
    if not ord then
      ord = redis.call('HINCRBY', kq(g, 'ord'), '#', 1)
      redis.call('HSET', kq(g, 'ord'), st.id, ord)
    end
    if event == 'assigned' and ag == g then
      redis.call('HSET', kq(g, 'conf'), 'rr', ord)
    end
  elseif s == 'weighted' then
    pass = field(st, 'pass:' .. g, 0)
    if event == 'assigned' and ag == g then
      pass = pass + STRIDE / field(st, 'w:' .. g, 1)
      redis.call('HSET', ka(st.id), 'pass:' .. g, pass)
    end
  end
  if not st.ready or st.load >= st.max or not st.gset[g] then
    redis.call('ZREM', key, st.id)
    return
  end
  if s == 'least_busy' then
    redis.call('ZADD', key, st.load * BAND + st.last, st.id)
  elseif s == 'skills' then
    local p = field(st, 'p:' .. g, 3)
    local base = (5 - p) * BAND
    if event == 'released' and redis.call('ZSCORE', key, st.id) then return end
    if event == 'ready' then
      redis.call('ZADD', key, base + math.floor(idleUs / 1000), st.id)
    else
      redis.call('ZADD', key, base + st.last, st.id)
    end
  elseif s == 'round_robin' then
    redis.call('ZADD', key, ord, st.id)
  elseif s == 'weighted' then
    if event == 'ready' and not redis.call('ZSCORE', key, st.id) then
      -- Back from not ready or offline: start at the group's current pass
      -- so the time away is not paid back in a burst. An agent who was
      -- only full keeps their pass (and the credit it holds).
      local head = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
      if #head > 0 and tonumber(head[2]) > pass then
        pass = tonumber(head[2])
        redis.call('HSET', ka(st.id), 'pass:' .. g, pass)
      end
    end
    redis.call('ZADD', key, pass, st.id)
  else -- longest_idle
    if event == 'ready' then
      redis.call('ZADD', key, idleUs, st.id)
    elseif event == 'assigned' then
      redis.call('ZADD', key, atTail(key, NOW_US), st.id)
    elseif not redis.call('ZSCORE', key, st.id) then
      redis.call('ZADD', key, atTail(key, NOW_US), st.id)
    end
  end
end

-- stale reports whether st must leave group g's avail set.
local function stale(st, g)
  return (not st) or (not st.ready) or (not st.gset[g]) or st.load >= st.max
end

-- pick chooses the agent of group g for a session of the given cost that
-- has waited waitMs, by the group's strategy; nil when nobody can take it.
local function pick(g, c, cost, waitMs)
  local key = kq(g, 'avail')
  local need = minProf(c, waitMs)
  local function first(ids)
    for _, id in ipairs(ids) do
      local st = agent(id)
      if stale(st, g) then
        redis.call('ZREM', key, id)
      elseif st.load + cost <= st.max then
        if need > 1 and field(st, 'p:' .. g, 3) < need then
          return nil, true -- best proficiency first: nobody further qualifies
        end
        return st
      end
    end
    return nil
  end
  if c.scoring == 'round_robin' then
    local rr = redis.call('HGET', kq(g, 'conf'), 'rr') or '0'
    local st = first(redis.call('ZRANGEBYSCORE', key, '(' .. rr, '+inf', 'LIMIT', 0, 32))
    if st then return st end
    return (first(redis.call('ZRANGEBYSCORE', key, '-inf', rr, 'LIMIT', 0, 32)))
  end
  -- A one-unit session fits any agent with room, so the head decides; a
  -- larger one may have to look past many partly busy agents.
  local last = 63
  if cost > 1 then last = -1 end
  return (first(redis.call('ZRANGE', key, 0, last)))
end

-- item reads a waiting session's metadata.
local function item(g, sid, score)
  local m = redis.call('HGET', kq(g, 'meta'), sid)
  local e, c, p, h
  if m then
    e, c, p, h = string.match(m, '^(%-?%d+)|(%d+)|([^|]*)|(%-?%d+)$')
  end
  local enq = tonumber(e)
  return { raw = e or '', enq = enq or tonumber(score) or NOW_MS,
    cost = tonumber(c) or 1, pref = p or '', hold = tonumber(h) or 0 }
end

-- assign gives session sid of group g to agent st and appends it to out
-- as session, group, agent, enqueued ms ("" if unknown), cost.
local function assign(g, sid, it, st, out)
  redis.call('ZREM', kq(g, 'wait'), sid)
  redis.call('HDEL', kq(g, 'meta'), sid)
  if it.pref ~= '' then
    redis.call('ZREM', kown(it.pref), g .. '\t' .. sid)
  end
  st.load = redis.call('HINCRBY', ka(st.id), 'load', it.cost)
  st.last = NOW_MS
  redis.call('HSET', ka(st.id), 'last', NOW_MS)
  for _, ag in ipairs(st.groups) do
    place(st, ag, 'assigned', g)
  end
  redis.call('HINCRBY', kq(g, 'served'), math.floor(NOW_MS / 60000), 1)
  out[#out + 1] = sid
  out[#out + 1] = g
  out[#out + 1] = st.id
  out[#out + 1] = it.raw
  out[#out + 1] = it.cost
end

-- matchGroup assigns group g's waiting sessions, best first, to the agents
-- its strategy picks, at most limit of them.
local function matchGroup(g, limit, out)
  local c = conf(g)
  local made = 0
  while made < limit do
    local items = redis.call('ZRANGE', kq(g, 'wait'), 0, 63, 'WITHSCORES')
    if #items == 0 then return end
    local progressed, stop = false, false
    for i = 1, #items, 2 do
      local sid = items[i]
      local it = item(g, sid, items[i + 1])
      local st
      if it.pref ~= '' and it.hold > NOW_MS then
        -- Held for the contact's last agent: theirs if they can take it.
        local pst = agent(it.pref)
        if pst and pst.ready and pst.gset[g] and pst.load + it.cost <= pst.max then
          st = pst
        end
      else
        st = pick(g, c, it.cost, NOW_MS - it.enq)
        -- Nobody for a one-unit session: nobody for any. A larger one may
        -- not fit where a smaller one behind it does.
        -- (In a skills group a session behind may have waited into a wider
        -- ring, when priority put a younger one first.)
        if not st and it.cost <= 1 and c.strategy ~= 'skills' then stop = true end
      end
      if st then
        assign(g, sid, it, st, out)
        made = made + 1
        progressed = true
        break
      end
      if stop then break end
    end
    if stop or not progressed then return end
  end
end

-- matchAgent gives agent st the waiting sessions they can take: first those
-- held for them, then across their groups the most urgent one — the
-- longest wait (priority credit included) relative to the group's
-- service-level threshold, times the group's weight.
local function matchAgent(st, out)
  while st.ready and st.load < st.max do
    local best, bestG, bestIt, bestU
    local own = redis.call('ZRANGE', kown(st.id), 0, 7)
    for _, m in ipairs(own) do
      local g, sid = string.match(m, '^([^\t]+)\t(.+)$')
      local it
      if g and st.gset[g] and redis.call('ZSCORE', kq(g, 'wait'), sid) then
        it = item(g, sid)
      end
      if not it or it.pref ~= st.id or it.hold <= NOW_MS then
        redis.call('ZREM', kown(st.id), m)
      elseif st.load + it.cost <= st.max then
        best, bestG, bestIt = sid, g, it
        break
      end
    end
    if not best then
      for _, g in ipairs(st.groups) do
        local c = conf(g)
        local items = redis.call('ZRANGE', kq(g, 'wait'), 0, 31, 'WITHSCORES')
        for i = 1, #items, 2 do
          local it = item(g, items[i], items[i + 1])
          if it.pref ~= '' and it.hold > NOW_MS and it.pref ~= st.id then
            -- held for another agent
          elseif st.load + it.cost > st.max then
            -- too large for the room left; a later one may fit
          else
            local need = minProf(c, NOW_MS - it.enq)
            if need <= 1 or field(st, 'p:' .. g, 3) >= need then
              local u = (NOW_MS - tonumber(items[i + 1])) / c.sl * c.weight
              if not bestU or u > bestU then
                best, bestG, bestIt, bestU = items[i], g, it, u
              end
              break
            end
            -- not yet in this agent's ring; one behind it may be
          end
        end
      end
    end
    if not best then return end
    assign(bestG, best, bestIt, st, out)
  end
end
