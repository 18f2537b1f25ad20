-- ARGV: now, node id, then the node's stream changes in order: "+<id>" a stream opened,
-- "-<id>:<ms>" a stream closed at <ms>. The node (whose hash of open streams is KEYS[13])
-- counts as alive from now on. An entry with a stream anywhere is out of its grace period; an
-- entry still in line whose last stream closed starts it. Returns how many changes were read.
redis.call('ZADD', KEYS[11], 'GT', ARGV[1], ARGV[2])
for i = 3, #ARGV do
  local change = ARGV[i]
  if string.sub(change, 1, 1) == '+' then
    local id = string.sub(change, 2)
    local e = get(id)
    if e and e.st ~= 'R' then
      redis.call('HINCRBY', watching, id, 1)
      redis.call('HINCRBY', KEYS[13], id, 1)
      redis.call('ZREM', detached, id)
    end
  else
    local id, at = string.match(change, '^%-(%d+):(%d+)$')
    if id then
      local here = redis.call('HINCRBY', KEYS[13], id, -1)
      if here <= 0 then redis.call('HDEL', KEYS[13], id) end
      -- Only a stream this node counted (its opening may have been skipped: entry gone).
      if here >= 0 then streams_closed(id, 1, at) end
    end
  end
end
return #ARGV - 2
