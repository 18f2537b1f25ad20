-- ARGV: entry id, fingerprint hash, now, node id. A stream opens on the calling node
-- (KEYS[13]), which counts as alive from now on; the entry's grace period stops. Returns 1, or
-- 0 when the entry is gone or not this fan's.
local id = ARGV[1]
local e = get(id)
if not e or e.st == 'R' or e.fp ~= ARGV[2] then return 0 end
redis.call('HINCRBY', watching, id, 1)
redis.call('HINCRBY', KEYS[13], id, 1)
redis.call('ZADD', KEYS[11], 'GT', ARGV[3], ARGV[4])
redis.call('ZREM', detached, id)
return 1
