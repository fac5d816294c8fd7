-- lib: shared by every routing operation. scripts.go builds one script
-- from it, one function per operation file (called with its own ARGV
-- table) and dispatch.lua, which runs a list of operations of one tenant.
-- Every operation sees
--   KEYS[1] -> the tenant's marker key P:built; it names the tenant's hash
--              slot, and every key an operation touches carries the same
--              {tenant} hash tag, so scripts stay in one Redis Cluster slot
--   ARGV[1] -> P, the tenant's key prefix "<prefix>:{tenant}"
--   ARGV[2] -> now, unix µs
-- and its own arguments from ARGV[3] on.
--
-- Keys (built here and in keys.go, nowhere else):
--   P:q:<g>:conf    HASH  routing settings of group g (configure.lua):
--                         strategy, fallback, sl, weight, step, sticky,
--                         ring, maxq; rr the round-robin ordinal served
--                         last; t (longest_idle) a score at or after every
--                         score g's avail set was given (µs), so that the
--                         next agent at the tail goes after them all
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
-- values (16 digits) reach redis.call exact, as strings from int() or as
-- numbers, which Redis converts without loss (Lua's own tostring keeps
-- 14 digits).
--
-- Cost: a match spends far more on redis.call itself (argument and reply
-- conversion, number formatting) and on walking listpack-encoded sorted
-- sets than on the commands' logic. So operations read each key once
-- (caches per operation), fetch sorted sets in small windows, pass
-- integers as strings, keep each group's tail in its conf hash instead of
-- reading the avail set's last score, and keep avail sets as skiplists
-- (widen).

local call = redis.call
local P = ARGV[1]
-- NOW_US and NOW_MS are the current operation's now; dispatch.lua sets
-- them before each operation.
local NOW_US, NOW_MS

-- BAND separates a score's coarse part (load, proficiency) from its ms
-- time part; ms stay below it until 2286.
local BAND = 10000000000000
-- STRIDE is the weighted pass advance of a weight-1 agent.
local STRIDE = 1000000

-- Key names are built once per script call: a concatenation makes Lua
-- hash and intern a new string every time.
local KQ, KA, KOWN = {}, {}, {}
local function kq(g, s)
  local t = KQ[g]
  if not t then
    t = {}
    KQ[g] = t
  end
  local k = t[s]
  if not k then
    k = P .. ':q:' .. g .. ':' .. s
    t[s] = k
  end
  return k
end
local function ka(a)
  local k = KA[a]
  if not k then
    k = P .. ':agent:' .. a
    KA[a] = k
  end
  return k
end
local function kown(a)
  local k = KOWN[a]
  if not k then
    k = P .. ':agent:' .. a .. ':own'
    KOWN[a] = k
  end
  return k
end

-- int formats an integral number for redis.call, which would otherwise
-- convert it with a dearer "%.17g". Small values (loads) are kept for
-- the script call, and the last large one (a now, a minute): numbers
-- are no table keys here, since gopher-lua (miniredis) fills its array
-- part up to any integer key below 2^26.
local SMALL, lastN, lastS = {}, nil, nil
local function int(n)
  if n >= 0 and n < 1024 then
    local s = SMALL[n + 1]
    if not s then
      s = string.format('%d', n)
      SMALL[n + 1] = s
    end
    return s
  end
  if n ~= lastN then
    lastN, lastS = n, string.format('%d', n)
  end
  return lastS
end

-- Caches of one operation, emptied by dispatch.lua before each one.
-- grp[g]: s the strategy that orders g's agents, c the settings (nil
-- until needed), t the tail (nil: never recorded), td the tail moved.
local grp, agents, dirty = {}, {}, {}

-- loadGroup reads what the operation needs of group g once: all its
-- settings when full, else only what orders its agents; and its tail.
-- A group never configured has the defaults.
local function loadGroup(g, full)
  local e = grp[g]
  if e and (e.c or not full) then return e end
  if not full then
    local v = call('HMGET', kq(g, 'conf'), 'strategy', 'fallback', 't')
    -- A sticky group orders its agents by its fallback strategy.
    local s = v[1] or 'longest_idle'
    if s == 'sticky' then s = v[2] or 'longest_idle' end
    e = { s = s, t = tonumber(v[3]) }
    grp[g] = e
    return e
  end
  local v = call('HMGET', kq(g, 'conf'), 'strategy', 'fallback', 'sl', 'weight', 'step',
    'sticky', 'ring', 'maxq', 't')
  local c = {
    strategy = v[1] or 'longest_idle', fallback = v[2] or 'longest_idle',
    sl = tonumber(v[3]) or 20000, weight = tonumber(v[4]) or 1,
    step = tonumber(v[5]) or 60000, sticky = tonumber(v[6]) or 30000,
    ring = tonumber(v[7]) or 15000, maxq = tonumber(v[8]) or 0,
  }
  if c.sl <= 0 then c.sl = 1 end
  if c.ring <= 0 then c.ring = 1 end
  c.scoring = c.strategy
  if c.strategy == 'sticky' then c.scoring = c.fallback end
  if not e then
    e = { s = c.scoring, t = tonumber(v[9]) }
    grp[g] = e
  end
  e.c = c
  return e
end

-- conf is a group's settings.
local function conf(g) return loadGroup(g, true).c end

-- scoring is the strategy that orders a group's available agents.
local function scoring(g) return loadGroup(g, false).s end

-- tail is group g's recorded tail; a group without one (state written by
-- an earlier version) starts from its avail set's last score.
local function tail(g, key)
  local e = grp[g]
  if e.t == nil then
    local last = call('ZRANGE', key, '-1', '-1', 'WITHSCORES')
    e.t = tonumber(last[2]) or 0
  end
  return e.t
end

local function setTail(g, t)
  local e = grp[g]
  e.t = t
  if not e.td then
    e.td = true
    dirty[#dirty + 1] = g
  end
end

-- afterTail is a score after every score group g's avail set was given,
-- at least now: ties would fall back to member order and let one agent
-- win every burst.
local function afterTail(g, key)
  local t = tail(g, key)
  if t >= NOW_US then return t + 1 end
  return NOW_US
end

-- flushTails records the tails the operation moved; dispatch.lua calls it
-- after each operation.
local function flushTails()
  for _, g in ipairs(dirty) do
    call('HSET', kq(g, 'conf'), 't', int(grp[g].t))
  end
  dirty = {}
end

-- agent reads an agent's routing state once per operation; nil when
-- routing does not know the agent. Operations keep the cached state
-- current.
local function agent(a)
  local st = agents[a]
  if st then return st end
  local v = call('HMGET', ka(a), 'ready', 'load', 'max', 'groups', 'last')
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
  return tonumber(call('HGET', ka(st.id), name) or '') or default
end

-- minProf is the lowest proficiency a skills group admits after waitMs.
local function minProf(c, waitMs)
  if c.strategy ~= 'skills' then return 1 end
  local p = 5 - math.floor(waitMs / c.ring)
  if p < 1 then return 1 end
  return p
end

-- place keeps agent st's entry in group g's avail set right after an
-- event: 'assigned' (st got a session of group ag), 'released' or 'ready'
-- (idleUs: the idle-since time to record).
local function place(st, g, event, ag, idleUs)
  local key = kq(g, 'avail')
  local s = scoring(g)
  -- The rotation and the weighted pass advance with every assignment in
  -- the group, also one that fills the agent up.
  local ord, pass
  if s == 'round_robin' then
    ord = call('HGET', kq(g, 'ord'), st.id)
    if not ord then
      ord = call('HINCRBY', kq(g, 'ord'), '#', 1)
      call('HSET', kq(g, 'ord'), st.id, ord)
    end
    if event == 'assigned' and ag == g then
      call('HSET', kq(g, 'conf'), 'rr', ord)
    end
  elseif s == 'weighted' then
    pass = field(st, 'pass:' .. g, 0)
    if event == 'assigned' and ag == g then
      pass = pass + STRIDE / field(st, 'w:' .. g, 1)
      call('HSET', ka(st.id), 'pass:' .. g, pass)
    end
  end
  if not st.ready or st.load >= st.max or not st.gset[g] then
    call('ZREM', key, st.id)
    return
  end
  if s == 'least_busy' then
    call('ZADD', key, int(st.load * BAND + st.last), st.id)
  elseif s == 'skills' then
    local base = (5 - field(st, 'p:' .. g, 3)) * BAND
    if event == 'ready' then
      call('ZADD', key, int(base + math.floor(idleUs / 1000)), st.id)
    elseif event == 'released' then
      call('ZADD', key, 'NX', int(base + st.last), st.id) -- keeps a place it has
    else
      call('ZADD', key, int(base + st.last), st.id)
    end
  elseif s == 'round_robin' then
    call('ZADD', key, ord, st.id)
  elseif s == 'weighted' then
    if event == 'ready' and not call('ZSCORE', key, st.id) then
      -- Back from not ready or offline: start at the group's current pass
      -- so the time away is not paid back in a burst. An agent who was
      -- only full keeps their pass (and the credit it holds).
      local head = call('ZRANGE', key, '0', '0', 'WITHSCORES')
      if #head > 0 and tonumber(head[2]) > pass then
        pass = tonumber(head[2])
        call('HSET', ka(st.id), 'pass:' .. g, pass)
      end
    end
    call('ZADD', key, pass, st.id)
  else -- longest_idle
    if event == 'ready' then
      call('ZADD', key, int(idleUs), st.id)
      if idleUs > tail(g, key) then setTail(g, idleUs) end
    elseif event == 'assigned' then
      local t = afterTail(g, key)
      call('ZADD', key, int(t), st.id)
      setTail(g, t)
    else -- released: an agent still in the set keeps their place
      local t = afterTail(g, key)
      if call('ZADD', key, 'NX', int(t), st.id) == 1 then setTail(g, t) end
    end
  end
end

-- WIDE is longer than zset-max-listpack-value (64 bytes by default).
-- Adding it to a sorted set turns the set into a skiplist, which it stays
-- after WIDE is removed again (Redis does not convert back). An avail set
-- is re-scored on every assignment in every group of the agent, and in a
-- listpack (up to 128 members by default) each ZADD scans and moves the
-- whole set; in a skiplist it costs a hash lookup and a log-n insert.
-- This changes only how Redis stores the set, never what it holds.
local WIDE = ':' .. string.rep('~', 71) -- ':' is in no agent id
local function widen(key)
  call('ZADD', key, '+inf', WIDE)
  call('ZREM', key, WIDE)
end

-- stale reports whether st must leave group g's avail set.
local function stale(st, g)
  return (not st) or (not st.ready) or (not st.gset[g]) or st.load >= st.max
end

-- scan walks group g's avail set (key) best first for an agent who can
-- take a session of the given cost and has at least proficiency need,
-- dropping stale agents on the way, in windows of 4, 16, 64... agents up
-- to limit (nil: all): the head nearly always decides, so a large window
-- would mostly convert agents nobody looks at. rr (round_robin): walk
-- the scores after rr when after is true, else those up to rr.
local function scan(g, key, cost, need, limit, rr, after)
  local off, n, seen = 0, 4, 0
  while true do
    if limit and seen + n > limit then n = limit - seen end
    if n <= 0 then return nil end
    local ids
    if not rr then
      ids = call('ZRANGE', key, int(off), int(off + n - 1))
    elseif after then
      ids = call('ZRANGEBYSCORE', key, '(' .. rr, '+inf', 'LIMIT', int(off), int(n))
    else
      ids = call('ZRANGEBYSCORE', key, '-inf', rr, 'LIMIT', int(off), int(n))
    end
    local dropped = 0
    for _, id in ipairs(ids) do
      local st = agent(id)
      if stale(st, g) then
        call('ZREM', key, id)
        dropped = dropped + 1
      elseif st.load + cost <= st.max then
        if need > 1 and field(st, 'p:' .. g, 3) < need then
          return nil -- best proficiency first: nobody further qualifies
        end
        return st
      end
    end
    if #ids < n then return nil end
    seen = seen + n
    off = off + n - dropped
    n = n * 4
  end
end

-- pick chooses the agent of group g for a session of the given cost that
-- has waited waitMs, by the group's strategy; nil when nobody can take it.
local function pick(g, c, cost, waitMs)
  local key = kq(g, 'avail')
  local need = minProf(c, waitMs)
  if c.scoring == 'round_robin' then
    local rr = call('HGET', kq(g, 'conf'), 'rr') or '0'
    return scan(g, key, cost, need, 32, rr, true) or scan(g, key, cost, need, 32, rr, false)
  end
  -- A one-unit session fits any agent with room, so the head decides; a
  -- larger one may have to look past many partly busy agents.
  local limit = 64
  if cost > 1 then limit = nil end
  return scan(g, key, cost, need, limit)
end

-- item reads a waiting session's metadata.
local function item(g, sid, score)
  local m = call('HGET', kq(g, 'meta'), sid)
  local e, c, p, h
  if m then
    e, c, p, h = string.match(m, '^(%-?%d+)|(%d+)|([^|]*)|(%-?%d+)$')
  end
  local enq = tonumber(e)
  return { raw = e or '', enq = enq or tonumber(score) or NOW_MS,
    cost = tonumber(c) or 1, pref = p or '', hold = tonumber(h) or 0 }
end

-- candidate is the agent who gets session it of group g (settings c) now,
-- or nil: the contact's last agent while the session is held for them,
-- else the group strategy's pick.
local function candidate(g, c, it)
  if it.pref ~= '' and it.hold > NOW_MS then
    local pst = agent(it.pref)
    if pst and pst.ready and pst.gset[g] and pst.load + it.cost <= pst.max then
      return pst
    end
    return nil
  end
  return pick(g, c, it.cost, NOW_MS - it.enq)
end

-- assign gives session sid of group g to agent st and appends it to out
-- as session, group, agent, enqueued ms ("" if unknown), cost. queued is
-- false for a session matched by its own enqueue before it was stored.
local function assign(g, sid, it, st, out, queued)
  if queued then
    call('ZREM', kq(g, 'wait'), sid)
    call('HDEL', kq(g, 'meta'), sid)
    if it.pref ~= '' then
      call('ZREM', kown(it.pref), g .. '\t' .. sid)
    end
  end
  st.load = st.load + it.cost
  st.last = NOW_MS
  call('HSET', ka(st.id), 'load', int(st.load), 'last', int(NOW_MS))
  for _, ag in ipairs(st.groups) do
    place(st, ag, 'assigned', g)
  end
  call('HINCRBY', kq(g, 'served'), int(math.floor(NOW_MS / 60000)), '1')
  out[#out + 1] = sid
  out[#out + 1] = g
  out[#out + 1] = st.id
  out[#out + 1] = it.raw
  out[#out + 1] = it.cost
end

-- matchGroup assigns group g's waiting sessions, best first, to the agents
-- its strategy picks, at most limit of them. Each step looks at the first
-- 64 sessions, in two windows since the head nearly always decides.
local function matchGroup(g, limit, out)
  local c = conf(g)
  local wkey = kq(g, 'wait')
  local made = 0
  while made < limit do
    local progressed, stop = false, false
    local off, n = 0, 4
    while true do
      local items = call('ZRANGE', wkey, int(off), int(off + n - 1), 'WITHSCORES')
      if #items == 0 then break end
      for i = 1, #items, 2 do
        local sid = items[i]
        local it = item(g, sid, items[i + 1])
        local st = candidate(g, c, it)
        -- Nobody for a one-unit session: nobody for any. A larger one may
        -- not fit where a smaller one behind it does.
        -- (In a skills group a session behind may have waited into a wider
        -- ring, when priority put a younger one first.)
        if not st and it.cost <= 1 and c.strategy ~= 'skills'
          and not (it.pref ~= '' and it.hold > NOW_MS) then
          stop = true
        end
        if st then
          assign(g, sid, it, st, out, true)
          made = made + 1
          progressed = true
          break
        end
        if stop then break end
      end
      if progressed or stop or #items < 2 * n or off + n >= 64 then break end
      off, n = off + n, 64 - (off + n)
    end
    if stop or not progressed then return end
  end
end

-- matchAgent gives agent st the waiting sessions they can take: first those
-- held for them, then across their groups the most urgent one — the
-- longest wait (priority credit included) relative to the group's
-- service-level threshold, times the group's weight. Each group's first 32
-- sessions are looked at, in two windows.
local function matchAgent(st, out)
  while st.ready and st.load < st.max do
    local best, bestG, bestIt, bestU
    local own = call('ZRANGE', kown(st.id), '0', '7')
    for _, m in ipairs(own) do
      local g, sid = string.match(m, '^([^\t]+)\t(.+)$')
      local it
      if g and st.gset[g] and call('ZSCORE', kq(g, 'wait'), sid) then
        it = item(g, sid)
      end
      if not it or it.pref ~= st.id or it.hold <= NOW_MS then
        call('ZREM', kown(st.id), m)
      elseif st.load + it.cost <= st.max then
        best, bestG, bestIt = sid, g, it
        break
      end
    end
    if not best then
      for _, g in ipairs(st.groups) do
        local wkey = kq(g, 'wait')
        local off, n, found = 0, 4, false
        while not found do
          local items = call('ZRANGE', wkey, int(off), int(off + n - 1), 'WITHSCORES')
          if #items == 0 then break end
          local c = conf(g)
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
                found = true
                break
              end
              -- not yet in this agent's ring; one behind it may be
            end
          end
          if found or #items < 2 * n or off + n >= 32 then break end
          off, n = off + n, 32 - (off + n)
        end
      end
    end
    if not best then return end
    assign(bestG, best, bestIt, st, out, true)
  end
end
