-- lib: shared by every routing operation. scripts.go builds one Lua
-- program from it, one function per operation file (called with its own
-- ARGV table) and route (dispatch.lua), which runs a list of operations of
-- one tenant. The program runs as a Redis function library (loaded once;
-- FCALL calls route) or as a script (EVALSHA; every call runs the whole
-- program, then route). Every operation sees
--   KEYS[1] -> the tenant's marker key P:built; it names the tenant's hash
--              slot, and every key an operation touches carries the same
--              {tenant} hash tag, so scripts stay in one Redis Cluster slot
--   ARGV[1] -> P, the tenant's key prefix "<prefix>:{tenant}"
--   ARGV[2] -> now, unix µs
-- and its own arguments from ARGV[3] on.
--
-- Keys (built here and in keys.go, nowhere else):
--   P:route         HASH  what a match needs of every group, one field per
--                         group, so that one command reads it for all the
--                         groups an agent serves:
--                           <g> -> "<w><strategy>|<fallback>|<sl>|<weight>|
--                                   <step>|<sticky>|<ring>|<maxq>"
--                         g's settings as configure.lua last stored them,
--                         after w: "1" while g's waiting line may hold
--                         sessions, "0" once it was seen empty. A line
--                         that holds sessions is never marked "0", so a
--                         match skips lines marked "0" unread. A group
--                         without a field (never configured by this
--                         version) has its settings read from P:q:<g>:conf
--                         and its line read on every match.
--                           :t  -> the longest-idle tail: a score (µs) at
--                                  or after every score any avail set of
--                                  the tenant was given, so that an agent
--                                  who just got a session goes after all
--                                  others without reading a set's tail
--                           :pad -> PAD (below)
--                         (':' is in no group id)
--   P:q:<g>:conf    HASH  routing settings of group g (configure.lua):
--                         strategy, fallback, sl, weight, step, sticky,
--                         ring, maxq; rr the round-robin ordinal served
--                         last. t: the tail of g's avail set, written by
--                         an earlier version and folded into P:route :t
--                         when the group is first read without a field
--   P:q:<g>:wait    ZSET  session -> rank: enqueued ms - priority * step ms
--   P:q:<g>:meta    HASH  session -> "enqueued ms|cost|held for agent|held until ms"
--   P:q:<g>:avail   ZSET  agent -> strategy score, lowest goes first; may
--                         hold agents who since became full or not ready
--                         (dropped when a walk meets them). A ready agent
--                         with room is always in it
--   P:q:<g>:online  SET   agents logged in with the skill
--   P:q:<g>:ord     HASH  agent -> round-robin ordinal; ":n" the counter
--                         (':' is in no agent id; the "#" an earlier
--                         version used could be one)
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
-- conversion: every reply array becomes a Lua table grown one element at
-- a time) and on Lua's own work (tables, tonumber, string.format) than
-- on the commands' logic. So a match reads each key once per call
-- (the caches below are shared by every operation of a call), reads what
-- it needs of all an agent's groups in one command (P:route), skips
-- waiting lines marked empty and avail sets the agent never left, gives
-- one score per assignment, fetches sorted sets in small windows, passes
-- integers as strings, keeps the longest-idle tail in one field written
-- once per call, and keeps avail sets as skiplists (widen). And as a
-- function library the program itself is not run again for every call.
--
-- "Per call" below means one call of route: one FCALL or EVALSHA.

-- call is redis.call, P the tenant's prefix and KROUTE its P:route key,
-- for the call in progress: route sets them. (While a function library
-- loads, Redis offers it neither redis.call nor the string, table and
-- math libraries, so the program's top level only defines.)
local call, P, KROUTE
-- NOW is the current operation's now (unix µs, a string); route
-- sets it before each operation, and clears NOW_US, NOW_MS and NOW_S, the
-- same as numbers and as ms in a string: they are made from NOW on first
-- need (tonumber costs a strtod, and a release that matches nothing never
-- needs them).
local NOW, NOW_US, NOW_MS, NOW_S

-- BAND separates a score's coarse part (load, proficiency) from its ms
-- time part; ms stay below it until 2286.
local BAND = 10000000000000
-- STRIDE is the weighted pass advance of a weight-1 agent.
local STRIDE = 1000000

-- Key names are built when needed: most are used once or twice per
-- call, and a cache costs more than the concatenation.
local function kq(g, s)
  return P .. ':q:' .. g .. ':' .. s
end
local function ka(a)
  return P .. ':agent:' .. a
end
local function kown(a)
  return P .. ':agent:' .. a .. ':own'
end

-- Caches of pure functions of their keys (what a string of digits or an
-- entry means), kept from call to call as a function library; route
-- empties one that grew past MAXPURE entries.
local MAXPURE = 4096

-- int formats an integral number for redis.call, which would otherwise
-- convert it with a dearer "%.17g". Small values (loads) are kept, and
-- the last large one (a now, a score): numbers are no table keys here,
-- since gopher-lua (miniredis) fills its array part up to any integer key
-- below 2^26.
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

-- num converts a string of a small set of values (loads, capacities,
-- costs, counts) once: tonumber goes through strtod, which costs more
-- than a table lookup.
local NUMS, NNUMS = {}, 0
local function num(s)
  local v = NUMS[s]
  if v == nil then
    v = tonumber(s) or 0
    NUMS[s] = v
    NNUMS = NNUMS + 1
  end
  return v
end

-- nowMs is now in ms (and sets NOW_US and NOW_MS).
local function nowMs()
  if not NOW_MS then
    NOW_US = tonumber(NOW)
    NOW_MS = math.floor(NOW_US / 1000)
  end
  return NOW_MS
end

-- nowUs is now in µs.
local function nowUs()
  if not NOW_US then nowMs() end
  return NOW_US
end

-- nowMsS is now in ms as a string: NOW without its last three digits.
local function nowMsS()
  if not NOW_S then
    if #NOW > 3 and string.byte(NOW, 1) ~= 45 then -- not '-'
      NOW_S = string.sub(NOW, 1, -4)
    else
      NOW_S = int(nowMs())
    end
  end
  return NOW_S
end

-- Caches of one call, shared by its operations. A call runs atomically,
-- so what one operation read stays true for the next as long as every
-- write updates the caches too; route empties them at the start of a call
-- and after an operation that failed, whose writes may have stopped half
-- way.
--   GC[g] group g's settings (a table shared by every group with the same
--         entry: never modified), GV[g] its P:route entry, GW[g] the
--         entry's w ('?' when g has no entry).
--   AG[a] an agent's routing state: id, ready, load, max, groups,
--         last (nil until needed; lastS the same as a string); false for
--         an agent routing does not know.
local GC, GV, GW, AG = {}, {}, {}, {}
-- TAIL is the tenant's longest-idle tail (nil until read) and TAIL_MOVED
-- whether it must be written back. It survives a failed operation: the
-- scores it covers were given.
local TAIL, TAIL_MOVED = nil, false
-- Parses, pure (MAXPURE): an entry string -> its settings (PC), an
-- agent's groups csv -> the list of them (GL).
local PC, GL, NPC, NGL = {}, {}, 0, 0

local function resetCaches()
  GC, GV, GW, AG = {}, {}, {}, {}
end

-- confFrom builds a group's settings from their stored strings; missing
-- ones ('' or false) take the defaults.
local function confFrom(s, fb, sl, w, step, sticky, ring, maxq)
  if not s or s == '' then s = 'longest_idle' end
  if not fb or fb == '' then fb = 'longest_idle' end
  local c = {
    strategy = s, fallback = fb, scoring = s,
    sl = tonumber(sl) or 20000, weight = tonumber(w) or 1,
    step = tonumber(step) or 60000, sticky = tonumber(sticky) or 30000,
    ring = tonumber(ring) or 15000, maxq = tonumber(maxq) or 0,
  }
  if c.sl <= 0 then c.sl = 1 end
  if c.ring <= 0 then c.ring = 1 end
  -- A sticky group orders its agents by its fallback strategy.
  if s == 'sticky' then c.scoring = fb end
  return c
end

local function parseEntry(e)
  local c = PC[e]
  if not c then
    c = confFrom(string.match(e,
      '^.([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$'))
    PC[e] = c
    NPC = NPC + 1
  end
  return c
end

-- CONF lists the settings in P:route entry order.
local CONF = { 'strategy', 'fallback', 'sl', 'weight', 'step', 'sticky', 'ring', 'maxq' }

-- packConf joins the stored settings v (an HMGET of CONF) for an entry.
local function packConf(v)
  local t = {}
  for i = 1, 8 do t[i] = v[i] or '' end
  return table.concat(t, '|')
end

local function foldTail(t)
  if t > TAIL then
    TAIL, TAIL_MOVED = t, true
  end
end

-- legacyGroup reads the settings of a group without a P:route entry from
-- its conf hash, and folds the tail an earlier version kept for its avail
-- set (the set's last score when it kept none) into the tenant's tail.
local function legacyGroup(g)
  local v = call('HMGET', kq(g, 'conf'), 'strategy', 'fallback', 'sl', 'weight', 'step',
    'sticky', 'ring', 'maxq', 't')
  local e = '?' .. packConf(v)
  GC[g], GV[g], GW[g] = parseEntry(e), e, '?'
  local t = tonumber(v[9] or '')
  if not t then
    local last = call('ZRANGE', kq(g, 'avail'), '-1', '-1', 'WITHSCORES')
    t = tonumber(last[2]) or 0
  end
  foldTail(t)
end

-- loadGroups reads what the cache lacks of groups list (and the tail, on
-- the call's first read) in one command.
local NEED = {}
local function loadGroups(list)
  local n = 0
  if TAIL == nil then
    n = 1
    NEED[1] = ':t'
  end
  for i = 1, #list do
    local g = list[i]
    if GC[g] == nil then
      n = n + 1
      NEED[n] = g
    end
  end
  if n == 0 then return end
  local v = call('HMGET', KROUTE, unpack(NEED, 1, n))
  local first = 1
  if TAIL == nil then
    TAIL = tonumber(v[1] or '') or 0
    first = 2
  end
  for i = first, n do
    local g, e = NEED[i], v[i]
    if GC[g] == nil then -- not when list names g twice
      if e then
        GC[g], GV[g], GW[g] = parseEntry(e), e, string.sub(e, 1, 1)
      else
        legacyGroup(g)
      end
    end
  end
end

-- conf is a group's settings. A group never configured has the defaults.
local ONE = {}
local function conf(g)
  local c = GC[g]
  if c == nil then
    ONE[1] = g
    loadGroups(ONE)
    c = GC[g]
  end
  return c
end

-- setWait records that group g's line may hold sessions (f '1') or was
-- seen empty ('0'). A group without an entry gets one only for '1': its
-- line is read on every match anyway.
local function setWait(g, f)
  conf(g)
  local w = GW[g]
  if w == f or (w == '?' and f == '0') then return end
  local e = f .. string.sub(GV[g], 2)
  call('HSET', KROUTE, g, e)
  GV[g], GW[g] = e, f
end

-- PAD is longer than hash-max-listpack-value (64 bytes by default).
-- configure.lua keeps it in P:route as the field ":pad", which makes Redis
-- store the hash as a hash table: P:route holds a field per group, and in
-- the compact listpack encoding every field read walks the fields before
-- it. Like WIDE (below), this changes only how Redis stores the hash.
local PAD = '~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~'

-- afterTail is a score after every score the tenant's avail sets were
-- given, at least now: ties would fall back to member order and let one
-- agent win every burst. It becomes the tail when commit is true.
local function afterTail(commit)
  if TAIL == nil then
    TAIL = tonumber(call('HGET', KROUTE, ':t') or '') or 0
  end
  local t = TAIL
  local now = nowUs()
  if t >= now then t = t + 1 else t = now end
  if commit then TAIL, TAIL_MOVED = t, true end
  return t
end

-- flushTail records the tail the call moved; route calls it with the
-- call's last operation.
local function flushTail()
  if TAIL_MOVED then
    call('HSET', KROUTE, ':t', int(TAIL))
    TAIL_MOVED = false
  end
end

local function groupsOf(csv)
  local list = GL[csv]
  if not list then
    list = {}
    for g in string.gmatch(csv, '[^,]+') do
      list[#list + 1] = g
    end
    GL[csv] = list
    NGL = NGL + 1
  end
  return list
end

-- serves reports whether agent st serves group g (agents serve a few).
local function serves(st, g)
  local gs = st.groups
  for i = 1, #gs do
    if gs[i] == g then return true end
  end
  return false
end

-- agent reads an agent's routing state once per call; nil when
-- routing does not know the agent. Operations keep the cached state
-- current.
local function agent(a)
  local st = AG[a]
  if st ~= nil then return st or nil end
  local v = call('HMGET', ka(a), 'ready', 'load', 'max', 'groups')
  if not v[3] then
    AG[a] = false
    return nil
  end
  st = { id = a, ready = v[1] == '1', load = num(v[2] or '0'), max = num(v[3]),
    groups = groupsOf(v[4] or '') }
  AG[a] = st
  return st
end

local function field(st, name, default)
  return tonumber(call('HGET', ka(st.id), name) or '') or default
end

-- last is when the agent last got a session (or became idle), in ms.
local function last(st)
  local l = st.last
  if l == nil then
    if st.lastS then
      l = tonumber(st.lastS)
    else
      l = field(st, 'last', 0)
    end
    st.last = l
  end
  return l
end

-- assigned records that agent st took a session of the given cost now.
local function assigned(st, cost)
  st.load = st.load + cost
  st.last, st.lastS = nil, nowMsS()
  call('HSET', ka(st.id), 'load', int(st.load), 'last', st.lastS)
end

-- minProf is the lowest proficiency a skills group admits after waitMs.
local function minProf(c, waitMs)
  if c.strategy ~= 'skills' then return 1 end
  local p = 5 - math.floor(waitMs / c.ring)
  if p < 1 then return 1 end
  return p
end

-- ordinal is agent st's place in group g's rotation, given on first use.
-- The counter is the field ":n"; an earlier version kept it in "#", which
-- an agent id may be: until the counter moved, "#" is the counter.
local function ordinal(g, st)
  local k = kq(g, 'ord')
  local ord = call('HGET', k, st.id)
  if ord and st.id ~= '#' then return ord end
  if call('HEXISTS', k, ':n') == 0 then
    -- Every ordinal the old counter gave is at most its value and at most
    -- the hash's size.
    local n = tonumber(call('HGET', k, '#') or '') or 0
    local size = call('HLEN', k)
    if size > n then n = size end
    call('HSET', k, ':n', int(n))
    call('HDEL', k, '#')
    ord = nil
  end
  if ord then return ord end
  ord = call('HINCRBY', k, ':n', 1)
  call('HSET', k, st.id, ord)
  return ord
end

-- place keeps agent st's entry in group g's avail set right after an
-- event: 'assigned' (st got a session of group ag), 'released' or 'ready'
-- (idleUs: the idle-since time to record). t is the longest-idle score of
-- this assignment in the groups placed before (nil for none yet): one
-- score after the tail serves all of the agent's groups. Returns it.
local function place(st, g, event, ag, idleUs, t)
  local key = kq(g, 'avail')
  local s = conf(g).scoring
  -- The rotation and the weighted pass advance with every assignment in
  -- the group, also one that fills the agent up.
  local ord, pass
  if s == 'round_robin' then
    ord = ordinal(g, st)
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
  if not st.ready or st.load >= st.max or not serves(st, g) then
    call('ZREM', key, st.id)
    return t
  end
  if s == 'least_busy' then
    call('ZADD', key, int(st.load * BAND + last(st)), st.id)
  elseif s == 'skills' then
    local base = (5 - field(st, 'p:' .. g, 3)) * BAND
    if event == 'ready' then
      call('ZADD', key, int(base + math.floor(idleUs / 1000)), st.id)
    elseif event == 'released' then
      call('ZADD', key, 'NX', int(base + last(st)), st.id) -- keeps a place it has
    else
      call('ZADD', key, int(base + last(st)), st.id)
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
      if TAIL == nil then afterTail(false) end
      foldTail(idleUs)
    elseif event == 'assigned' then
      t = t or afterTail(true)
      call('ZADD', key, int(t), st.id)
    else -- released: an agent still in the set keeps their place
      if call('ZADD', key, 'NX', int(afterTail(false)), st.id) == 1 then
        afterTail(true)
      end
    end
  end
  return t
end

-- WIDE is longer than zset-max-listpack-value (64 bytes by default).
-- Adding it to a sorted set turns the set into a skiplist, which it stays
-- after WIDE is removed again (Redis does not convert back). An avail set
-- is re-scored on every assignment in every group of the agent, and in a
-- listpack (up to 128 members by default) each ZADD scans and moves the
-- whole set; in a skiplist it costs a hash lookup and a log-n insert.
-- This changes only how Redis stores the set, never what it holds.
local WIDE = ':~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~' -- ':' is in no agent id
local function widen(key)
  call('ZADD', key, '+inf', WIDE)
  call('ZREM', key, WIDE)
end

-- stale reports whether st must leave group g's avail set.
local function stale(st, g)
  return (not st) or (not st.ready) or (not serves(st, g)) or st.load >= st.max
end

-- scan walks group g's avail set (key) best first for an agent who can
-- take a session of the given cost and has at least proficiency need,
-- dropping stale agents on the way, in windows of 1, 4, 16, 64... agents
-- up to limit (nil: all): the head nearly always decides, and every
-- member read is converted into Lua. rr (round_robin): walk the scores
-- after rr when after is true, else those up to rr.
local function scan(g, key, cost, need, limit, rr, after)
  local off, n, seen = 0, 1, 0
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
    for i = 1, #ids do
      local id = ids[i]
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

-- enqOf is when session it was enqueued, in ms.
local function enqOf(it)
  local e = it.enq
  if not e then
    e = tonumber(it.raw) or nowMs()
    it.enq = e
  end
  return e
end

-- pick chooses the agent of group g for session it, by the group's
-- strategy; nil when nobody can take it.
local function pick(g, c, it)
  local key = kq(g, 'avail')
  local cost, need = it.cost, 1
  if c.strategy == 'skills' then need = minProf(c, nowMs() - enqOf(it)) end
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
  return { raw = e or '', enq = enq or tonumber(score) or nowMs(),
    cost = tonumber(c) or 1, pref = p or '', hold = tonumber(h) or 0 }
end

-- candidate is the agent who gets session it of group g (settings c) now,
-- or nil: the contact's last agent while the session is held for them,
-- else the group strategy's pick.
local function candidate(g, c, it)
  if it.pref ~= '' and it.hold > nowMs() then
    local pst = agent(it.pref)
    if pst and pst.ready and serves(pst, g) and pst.load + it.cost <= pst.max then
      return pst
    end
    return nil
  end
  return pick(g, c, it)
end

-- The served count's minute, as a string.
local MIN_N, MIN_S

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
  assigned(st, it.cost)
  loadGroups(st.groups)
  local t
  local gs = st.groups
  for i = 1, #gs do
    t = place(st, gs[i], 'assigned', g, nil, t)
  end
  local m = math.floor(nowMs() / 60000)
  if m ~= MIN_N then
    MIN_N, MIN_S = m, string.format('%d', m)
  end
  call('HINCRBY', kq(g, 'served'), MIN_S, '1')
  out[#out + 1] = sid
  out[#out + 1] = g
  out[#out + 1] = st.id
  out[#out + 1] = it.raw
  out[#out + 1] = it.cost
end

-- matchGroup assigns group g's waiting sessions, best first, to the agents
-- its strategy picks, at most limit of them. Each step looks at the first
-- 64 sessions, in two windows since the head nearly always decides. It
-- reads the line whatever P:route says and corrects what it says (the
-- reconciler runs it for every group).
local function matchGroup(g, limit, out)
  local c = conf(g)
  local wkey = kq(g, 'wait')
  local made = 0
  while made < limit do
    local progressed, stop = false, false
    local off, n = 0, 4
    while true do
      local items = call('ZRANGE', wkey, int(off), int(off + n - 1), 'WITHSCORES')
      if off == 0 then
        if #items == 0 then setWait(g, '0') else setWait(g, '1') end
      end
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
          and not (it.pref ~= '' and it.hold > nowMs()) then
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
-- sessions are looked at, in two windows. Lines marked empty in P:route
-- are not read, and with all of them empty nothing is: a session held for
-- the agent waits in a line of theirs.
local function matchAgent(st, out)
  while st.ready and st.load < st.max do
    loadGroups(st.groups)
    local gs, any = st.groups, false
    for i = 1, #gs do
      if GW[gs[i]] ~= '0' then
        any = true
        break
      end
    end
    if not any then return end
    local best, bestG, bestIt, bestU
    local own = call('ZRANGE', kown(st.id), '0', '7')
    for _, m in ipairs(own) do
      local g, sid = string.match(m, '^([^\t]+)\t(.+)$')
      local it
      if g and serves(st, g) and call('ZSCORE', kq(g, 'wait'), sid) then
        it = item(g, sid)
      end
      if not it or it.pref ~= st.id or it.hold <= nowMs() then
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
        while GW[g] ~= '0' do
          local items = call('ZRANGE', wkey, int(off), int(off + n - 1), 'WITHSCORES')
          if #items == 0 then
            if off == 0 then setWait(g, '0') end
            break
          end
          local c = conf(g)
          for i = 1, #items, 2 do
            local it = item(g, items[i], items[i + 1])
            if it.pref ~= '' and it.hold > nowMs() and it.pref ~= st.id then
              -- held for another agent
            elseif st.load + it.cost > st.max then
              -- too large for the room left; a later one may fit
            else
              local need = minProf(c, nowMs() - it.enq)
              if need <= 1 or field(st, 'p:' .. g, 3) >= need then
                local u = (nowMs() - tonumber(items[i + 1])) / c.sl * c.weight
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
