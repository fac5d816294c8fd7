-- stats: the live state of groups' queues, read in one step so the
-- numbers agree. The oldest wait is found over every waiting session's
-- metadata (priority may put it anywhere in the line). Served counts older than ten minutes are dropped here.
--
-- ARGV[3..] -> group ids
-- Returns per group: waiting, oldest enqueued ms ("" when none), online,
--   available, assignments in the last five minutes (current included).
local out = {}
local minute = math.floor(nowMs() / 60000)
for i = 3, #ARGV do
  local g = ARGV[i]
  local oldest = ''
  for _, m in ipairs(redis.call('HVALS', kq(g, 'meta'))) do
    local e = tonumber(string.match(m, '^(%-?%d+)|'))
    if e and (oldest == '' or e < oldest) then oldest = e end
  end
  local served = 0
  local counts = redis.call('HGETALL', kq(g, 'served'))
  for j = 1, #counts, 2 do
    local m = tonumber(counts[j])
    if m > minute - 5 then
      served = served + tonumber(counts[j + 1])
    elseif m <= minute - 10 then
      redis.call('HDEL', kq(g, 'served'), counts[j])
    end
  end
  out[#out + 1] = redis.call('ZCARD', kq(g, 'wait'))
  out[#out + 1] = tostring(oldest)
  out[#out + 1] = redis.call('SCARD', kq(g, 'online'))
  out[#out + 1] = redis.call('ZCARD', kq(g, 'avail'))
  out[#out + 1] = served
end
return out
