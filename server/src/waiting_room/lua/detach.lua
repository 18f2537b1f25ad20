-- ARGV: now, then entry ids. Streams closed on the node whose hash is KEYS[13] (one per id;
-- "all" as the second argument and a scan cursor as the third: a batch of every stream the
-- node had, as after it died). An entry still in line with no stream left anywhere starts its
-- grace period. Returns the next cursor ("0" when done) in "all" mode, else the count.
local now = ARGV[1]
local ids = {}
local counts = {}
local cursor = nil
if ARGV[2] == 'all' then
  local batch = redis.call('HSCAN', KEYS[13], ARGV[3] or '0', 'COUNT', 1000)
  local fields = batch[2]
  for i = 1, #fields, 2 do
    table.insert(ids, fields[i])
    counts[fields[i]] = tonumber(fields[i + 1])
  end
  for _, id in ipairs(ids) do redis.call('HDEL', KEYS[13], id) end
  cursor = batch[1]
  if cursor == '0' then redis.call('DEL', KEYS[13]) end
else
  for i = 2, #ARGV do
    local id = ARGV[i]
    local left = redis.call('HINCRBY', KEYS[13], id, -1)
    if left <= 0 then redis.call('HDEL', KEYS[13], id) end
    table.insert(ids, id)
    counts[id] = (counts[id] or 0) + 1
  end
end
for _, id in ipairs(ids) do
  local left = redis.call('HINCRBY', watching, id, -counts[id])
  if left <= 0 then
    redis.call('HDEL', watching, id)
    local e = get(id)
    if e and (e.st == 'W' or e.st == 'P') then redis.call('ZADD', detached, now, id) end
  end
end
if cursor then return cursor end
return #ids
