-- ARGV: reason (left, banned, paid), entry ids... Removes entries still in line or buying.
-- Returns how many were removed.
local gone = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local e = get(id)
  if e and e.st ~= 'R' and e.st ~= 'X' then
    unplace(id, e)
    e.st = 'R'
    put(id, e)
    table.insert(gone, id)
  end
end
if #gone > 0 then
  redis.call('XADD', log, '*', 'R', ARGV[1] .. ' ' .. table.concat(gone, ' '))
end
return #gone
