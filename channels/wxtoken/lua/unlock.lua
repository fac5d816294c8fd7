-- unlock: release the fetch lock if this node still holds it; a lock
-- that expired and was taken by another node is left alone.
--
-- KEYS[1] -> the fetch lock (a string holding its owner's id)
-- ARGV[1] -> the owner id this node set
-- Returns: 1 released; 0 not ours (expired, or held by another node).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
