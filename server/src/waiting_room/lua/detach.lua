-- ARGV: now, scan cursor. A node died: a batch of the streams it had open (its hash is
-- KEYS[13]) count as closed now; an entry still in line with no stream left anywhere starts its
-- grace period. Returns the next cursor ("0" when the node's hash is gone).
local now = ARGV[1]
local batch = redis.call('HSCAN', KEYS[13], ARGV[2], 'COUNT', 1000)
local fields = batch[2]
for i = 1, #fields, 2 do
  local id = fields[i]
  redis.call('HDEL', KEYS[13], id)
  streams_closed(id, tonumber(fields[i + 1]), now)
end
if batch[1] == '0' then redis.call('DEL', KEYS[13]) end
return batch[1]
