-- ARGV: fingerprint hash, tier, now, ip ("-" if unknown), proof of work done ("1"/"0").
-- Returns {"new"|"existing", id, state, tier, iat, position, waiting} or {"ended", sale},
-- {"pow"} (a new entry needs proof of work), {"missing"} (the event is not initialised).
local sale = redis.call('HGET', meta, 'sale')
if not sale then return { 'missing' } end
if sale == 'CLOSED' or sale == 'SOLD_OUT' then return { 'ended', sale } end
local id = redis.call('HGET', fpk, ARGV[1])
if id then
  local e = get(id)
  if e and e.st ~= 'R' and e.st ~= 'X' then
    return { 'existing', id, e.st, tostring(e.tier), e.iat, num(position(id, e)), num(waiting_total()) }
  end
end
if ARGV[5] ~= '1' then return { 'pow' } end
id = num(redis.call('HINCRBY', meta, 'entries', 1))
local e = { st = 'P', tier = tonumber(ARGV[2]), seq = 0, iat = ARGV[3], fp = ARGV[1] }
if sale == 'OPEN' or sale == 'PAUSED' then
  e.st = 'W'
  e.seq = redis.call('HINCRBY', meta, 'seq', 1)
  redis.call('ZADD', qkey(e.tier), e.seq, id)
else
  redis.call('ZADD', pre, id, id)
end
put(id, e)
redis.call('HSET', fpk, ARGV[1], id)
-- The grace period runs from the join until a stream attaches.
redis.call('ZADD', detached, ARGV[3], id)
redis.call('XADD', log, '*', 'J',
  id .. ' ' .. e.tier .. ' ' .. num(e.seq) .. ' ' .. ARGV[3] .. ' ' .. ARGV[1] .. ' ' .. ARGV[4])
return { 'new', id, e.st, tostring(e.tier), e.iat, num(position(id, e)), num(waiting_total()) }
