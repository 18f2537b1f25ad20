-- Joins a batch of fans (the node gathers the joins that arrive together into one call, and
-- the script writes each structure once per batch). ARGV: count, then per join: fingerprint
-- hash, tier, now, ip ("-" if unknown), proof of work done ("1"/"0"). Returns seven values per
-- join: "new"|"existing", id, state, tier, iat, position, waiting; or "ended", sale (and five
-- blanks); or "pow" (a new entry needs proof of work; six blanks). Returns {"missing"} alone
-- when the event is not initialised. The log gets one "J" entry for the batch's new entries:
-- "id tier seq iat fp ip" joined by ";".
local m = redis.call('HMGET', meta, 'sale', 'entries', 'seq')
local sale = m[1]
if not sale then return { 'missing' } end
local out = {}
local function answer(a, b, c, d, e, f, g)
  local n = #out
  out[n + 1] = a; out[n + 2] = b or ''; out[n + 3] = c or ''; out[n + 4] = d or ''
  out[n + 5] = e or ''; out[n + 6] = f or ''; out[n + 7] = g or ''
end
local last_id, last_seq = tonumber(m[2]) or 0, tonumber(m[3]) or 0
local counts = { redis.call('ZCARD', KEYS[4]), redis.call('ZCARD', KEYS[5]), redis.call('ZCARD', KEYS[6]) }
local prequeued = redis.call('ZCARD', pre)
local placed = sale == 'OPEN' or sale == 'PAUSED'
local fresh = {}
local ents, fps, dets, pres, logs = {}, {}, {}, {}, {}
local queued = { {}, {}, {} }
for j = 0, tonumber(ARGV[1]) - 1 do
  local fp, tier, now, ip, pow = ARGV[2 + j * 5], tonumber(ARGV[3 + j * 5]), ARGV[4 + j * 5], ARGV[5 + j * 5], ARGV[6 + j * 5]
  local waiting = counts[1] + counts[2] + counts[3] + prequeued
  if sale == 'CLOSED' or sale == 'SOLD_OUT' then
    answer('ended', sale)
  elseif fresh[fp] then
    -- The same fan twice in one batch (two tabs at once): one entry.
    local f = fresh[fp]
    answer('existing', f.id, f.st, tostring(f.tier), f.iat, num(f.position), num(waiting))
  else
    local id = redis.call('HGET', fpk, fp)
    local e = nil
    if id then e = get(id) end
    if e and e.st ~= 'R' and e.st ~= 'X' then
      local pos = 0
      if e.st == 'W' then
        local rank = redis.call('ZRANK', qkey(e.tier), id)
        if rank then
          pos = rank + 1
          for t = e.tier + 1, 2 do pos = pos + counts[t + 1] end
        end
      end
      answer('existing', id, e.st, tostring(e.tier), e.iat, num(pos), num(waiting))
    elseif pow ~= '1' then
      answer('pow')
    else
      last_id = last_id + 1
      id = num(last_id)
      local st, seq, pos = 'P', 0, 0
      if placed then
        st = 'W'
        last_seq = last_seq + 1
        seq = last_seq
        counts[tier + 1] = counts[tier + 1] + 1
        local q = queued[tier + 1]
        q[#q + 1] = seq; q[#q + 1] = id
        -- New entries go to the back of their tier.
        for t = tier, 2 do pos = pos + counts[t + 1] end
      else
        prequeued = prequeued + 1
        pres[#pres + 1] = id; pres[#pres + 1] = id
      end
      ents[#ents + 1] = id
      ents[#ents + 1] = st .. '|' .. tier .. '|' .. num(seq) .. '|' .. now .. '|' .. fp
      fps[#fps + 1] = fp; fps[#fps + 1] = id
      -- The grace period runs from the join until a stream attaches.
      dets[#dets + 1] = now; dets[#dets + 1] = id
      logs[#logs + 1] = id .. ' ' .. tier .. ' ' .. num(seq) .. ' ' .. now .. ' ' .. fp .. ' ' .. ip
      fresh[fp] = { id = id, st = st, tier = tier, iat = now, position = pos }
      answer('new', id, st, tostring(tier), now, num(pos), num(waiting + 1))
    end
  end
end
if #ents > 0 then
  redis.call('HSET', ent, unpack(ents))
  redis.call('HSET', fpk, unpack(fps))
  redis.call('ZADD', detached, unpack(dets))
  for t = 1, 3 do
    if #queued[t] > 0 then redis.call('ZADD', KEYS[3 + t], unpack(queued[t])) end
  end
  if #pres > 0 then redis.call('ZADD', pre, unpack(pres)) end
  redis.call('HSET', meta, 'entries', num(last_id), 'seq', num(last_seq))
  redis.call('XADD', log, '*', 'J', table.concat(logs, ';'))
end
return out
