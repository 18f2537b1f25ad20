-- ARGV: now, sale, phase, opens_at, rate, burst, max active, pow bits, seed ("-" if none),
-- codes (JSON). Creates the event's queue from the database's record, once; the log's first
-- entry ("I") is that starting point, so a replica replaying the log starts from it too.
if redis.call('EXISTS', meta) == 1 then return 0 end
redis.call('HSET', meta, 'sale', ARGV[2], 'phase', ARGV[3], 'opens_at', ARGV[4], 'rate', ARGV[5],
  'burst', ARGV[6], 'max_active', ARGV[7], 'pow', ARGV[8], 'seed', ARGV[9], 'codes', ARGV[10],
  'entries', 0, 'seq', 0, 'tokens', 0, 'refilled', ARGV[1], 'admitted', 0, 'alerts', 0)
redis.call('XADD', log, '*', 'I', ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5]
  .. ' ' .. ARGV[6] .. ' ' .. ARGV[7] .. ' ' .. ARGV[8] .. ' ' .. ARGV[9] .. ' ' .. ARGV[10])
return 1
