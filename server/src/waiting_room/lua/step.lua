-- One admission step; safe to run from every node at once (each run is atomic and the bucket
-- only earns tokens for time no run has counted yet). ARGV: now, pass ttl, no-show window,
-- grace period (all ms), most admissions per run. Returns {expired, removed, admitted}.
local now = tonumber(ARGV[1])
local sale = redis.call('HGET', meta, 'sale')
if not sale then return { -1, 0, 0 } end
-- Slots of no-shows and expired passes end.
local due = redis.call('ZRANGEBYSCORE', active, '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', active, id)
  local e = get(id)
  if e then
    e.st = 'X'
    put(id, e)
  end
end
if #due > 0 then redis.call('XADD', log, '*', 'X', table.concat(due, ' ')) end
-- Entries nobody has watched for the grace period leave.
local lapsed = redis.call('ZRANGEBYSCORE', detached, '-inf', now - tonumber(ARGV[4]), 'LIMIT', 0, 1000)
local gone = {}
for _, id in ipairs(lapsed) do
  local e = get(id)
  if e and (e.st == 'W' or e.st == 'P') then
    unplace(id, e)
    e.st = 'R'
    put(id, e)
    table.insert(gone, id)
  else
    redis.call('ZREM', detached, id)
  end
end
if #gone > 0 then redis.call('XADD', log, '*', 'R', 'grace ' .. table.concat(gone, ' ')) end
-- The valve: a token bucket at rate per minute with burst, capped by max_active (and, with the
-- automatic valve, by the limit the nodes tune).
local m = redis.call('HMGET', meta, 'rate', 'burst', 'max_active', 'tokens', 'refilled', 'phase',
  'auto', 'auto_limit')
local rate = tonumber(m[1]) or 0
local burst = math.max(tonumber(m[2]) or 1, 1)
local tokens = tonumber(m[4]) or 0
local last = tonumber(m[5]) or now
if now > last then
  tokens = math.min(burst, tokens + (now - last) / 60000 * rate)
  last = now
end
redis.call('HSET', meta, 'tokens', tostring(tokens), 'refilled', num(last))
if sale ~= 'OPEN' then return { #due, #gone, 0 } end
local min_tier = 0
if m[6] == 'PRESALE' then min_tier = 1 end
local eligible = 0
for t = min_tier, 2 do eligible = eligible + redis.call('ZCARD', qkey(t)) end
local cap = tonumber(m[3]) or 0
if m[7] == '1' then cap = math.min(cap, tonumber(m[8]) or cap) end
local room_left = cap - redis.call('ZCARD', active)
local n = math.min(math.floor(tokens), eligible, room_left, tonumber(ARGV[5]))
if n <= 0 then return { #due, #gone, 0 } end
local admitted = {}
local deadline = now + tonumber(ARGV[3])
for t = 2, min_tier, -1 do
  local want = n - #admitted
  if want <= 0 then break end
  local popped = redis.call('ZPOPMIN', qkey(t), want)
  for i = 1, #popped, 2 do
    local id = popped[i]
    local e = get(id)
    if e then
      e.st = 'A'
      put(id, e)
    end
    redis.call('ZADD', active, deadline, id)
    redis.call('ZREM', detached, id)
    table.insert(admitted, id)
  end
end
redis.call('HSET', meta, 'tokens', tostring(tokens - #admitted))
redis.call('HINCRBY', meta, 'admitted', #admitted)
redis.call('XADD', log, '*', 'A',
  num(now) .. ' ' .. num(now + tonumber(ARGV[2])) .. ' ' .. num(deadline) .. ' ' .. table.concat(admitted, ' '))
return { #due, #gone, #admitted }
