-- ARGV: entry id, pass expiry. The admitted fan held seats: the no-show clock stops and the
-- slot lasts until the pass expires.
local e = get(ARGV[1])
if not e or e.st ~= 'A' then return 0 end
e.st = 'S'
put(ARGV[1], e)
redis.call('ZADD', active, 'XX', ARGV[2], ARGV[1])
redis.call('XADD', log, '*', 'S', ARGV[1])
return 1
