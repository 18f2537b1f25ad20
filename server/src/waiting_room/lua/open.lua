-- Opens the sale: the pre-queue, in the shuffled order the caller computed from the committed
-- seed and the manifest, goes ahead of everyone who arrives later. KEYS[13]: the manifest's
-- key. ARGV: shuffle key, phase, opens_at, codes (JSON), count, then the shuffled entry ids,
-- then the manifest (hex of its entries in join order). Refuses (and changes nothing) unless
-- the sale is not open yet and the ids are exactly the pre-queue. Returns {"ok", base seq} or
-- {"state", sale} or {"stale"}.
local sale = redis.call('HGET', meta, 'sale')
if sale ~= 'NOT_OPEN' then return { 'state', sale or 'missing' } end
local count = tonumber(ARGV[5])
if redis.call('ZCARD', pre) ~= count or #ARGV - 6 ~= count then return { 'stale' } end
for i = 6, 5 + count do
  if not redis.call('ZSCORE', pre, ARGV[i]) then return { 'stale' } end
end
local base = tonumber(redis.call('HGET', meta, 'seq') or '0')
local seq = base
for i = 6, 5 + count do
  local id = ARGV[i]
  local e = get(id)
  seq = seq + 1
  if e then
    e.st = 'W'
    e.seq = seq
    put(id, e)
    redis.call('ZADD', qkey(e.tier), seq, id)
  end
end
redis.call('DEL', pre)
redis.call('SET', KEYS[13], ARGV[6 + count])
redis.call('HSET', meta, 'seq', num(seq), 'sale', 'OPEN', 'phase', ARGV[2], 'opens_at', ARGV[3],
  'codes', ARGV[4], 'seed', ARGV[1])
redis.call('XADD', log, '*', 'O', ARGV[1] .. ' ' .. num(base) .. ' ' .. ARGV[5],
  'M', 'OPEN ' .. ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4])
return { 'ok', num(base) }
