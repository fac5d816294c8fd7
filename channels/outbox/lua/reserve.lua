-- reserve: take the next send slot of one channel account, shared by every
-- node (GCRA, the generic cell rate algorithm). The key holds the account's
-- theoretical arrival time (TAT): when the next send would be due if sends
-- were spaced exactly one emission interval apart. A slot is never refused:
-- a caller that cannot send now gets a later slot and waits for it, so the
-- slots handed out in any window of length L number at most
-- burst + L / interval.
--
-- KEYS[1] -> the account's TAT (µs since the epoch, integer string)
-- ARGV[1] -> now (µs since the epoch)
-- ARGV[2] -> emission interval (µs per send, >= 1)
-- ARGV[3] -> burst (sends allowed back to back, >= 1)
-- Returns: the reserved slot (µs since the epoch), >= now.
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local slot = tat - (burst - 1) * interval
if slot < now then slot = now end
local nexttat = tat + interval
-- The key is worthless once its TAT has passed: let it expire then.
redis.call('SET', KEYS[1], string.format('%d', nexttat), 'PX', math.floor((nexttat - now) / 1000) + 1000)
return slot
