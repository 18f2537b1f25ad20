-- ARGV: severity, now, message. Returns the alert's id.
local id = redis.call('HINCRBY', meta, 'alerts', 1)
redis.call('XADD', log, '*', 'B', num(id) .. ' ' .. ARGV[1] .. ' ' .. ARGV[2], 'm', ARGV[3])
return id
