-- ARGV: entry id, no-show deadline. The admitted fan let their seats go: the no-show clock
-- starts again, so a fan who walked away frees the slot within the no-show window instead of
-- keeping it until the pass expires.
local e = get(ARGV[1])
if not e or e.st ~= 'S' then return 0 end
e.st = 'A'
put(ARGV[1], e)
redis.call('ZADD', active, 'XX', ARGV[2], ARGV[1])
redis.call('XADD', log, '*', 'U', ARGV[1] .. ' ' .. ARGV[2])
return 1
