-- ARGV: sale state, phase, opens_at, codes (JSON). Opening a sale that never opened goes
-- through open.lua (the pre-queue must be shuffled). Returns "ok", "needs_open" or "missing".
local current = redis.call('HGET', meta, 'sale')
if not current then return 'missing' end
if current == 'NOT_OPEN' and ARGV[1] == 'OPEN' then return 'needs_open' end
redis.call('HSET', meta, 'sale', ARGV[1], 'phase', ARGV[2], 'opens_at', ARGV[3], 'codes', ARGV[4])
redis.call('XADD', log, '*', 'M', ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4])
return 'ok'
