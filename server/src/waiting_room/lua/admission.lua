-- ARGV: now, rate per minute, burst, max active, proof-of-work bits, automatic valve ("1" or
-- "0"). The tokens earned at the old rate are kept (up to the new burst). An automatic valve
-- turned on starts from the nodes' starting limit (they tune `auto_limit` every second).
local was_auto = redis.call('HGET', meta, 'auto')
if ARGV[6] == '1' and was_auto ~= '1' then
  redis.call('HSET', meta, 'auto_limit', ARGV[7])
end
local now = tonumber(ARGV[1])
local m = redis.call('HMGET', meta, 'rate', 'tokens', 'refilled')
local tokens = tonumber(m[2]) or 0
local last = tonumber(m[3]) or now
if now > last then
  tokens = tokens + (now - last) / 60000 * (tonumber(m[1]) or 0)
  last = now
end
local burst = math.max(tonumber(ARGV[3]), 1)
tokens = math.min(tokens, burst)
redis.call('HSET', meta, 'rate', ARGV[2], 'burst', ARGV[3], 'max_active', ARGV[4], 'pow', ARGV[5],
  'auto', ARGV[6], 'tokens', tostring(tokens), 'refilled', num(last))
redis.call('XADD', log, '*', 'D',
  ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5] .. ' ' .. ARGV[6])
return 'ok'
