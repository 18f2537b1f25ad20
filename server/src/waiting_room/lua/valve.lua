-- ARGV: limit. The automatic valve's limit of fans buying at once, as a node's controller tuned
-- it (every node of the sale tunes it every second from its own sales feedback; the last one
-- written is the one in force). Ignored unless the valve is automatic.
if redis.call('HGET', meta, 'auto') ~= '1' then return 0 end
redis.call('HSET', meta, 'auto_limit', ARGV[1])
return 1
