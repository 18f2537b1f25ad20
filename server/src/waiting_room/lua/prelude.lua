-- Shared by every waiting-room script. Every key belongs to one event and carries its hash
-- tag {ev:<id>}, so a script touches one Redis Cluster slot. KEYS, always in this order:
--   1 meta      hash: sale, phase, opens_at, codes, rate, burst, max_active, pow, seed,
--               entries (last entry id), seq (last queue sequence), tokens, refilled,
--               admitted, alerts, auto ("1": automatic valve), auto_limit (its limit)
--   2 fp        hash: fingerprint hash -> entry id
--   3 ent       hash: entry id -> "state|tier|seq|iat|fp" (state P pre-queue, W waiting,
--               A admitted, S admitted and buying, R removed, X expired)
--   4..6 q0..q2 sorted sets per tier: entry id scored by queue sequence
--   7 pre       sorted set: pre-queue entry ids scored by id (join order)
--   8 active    sorted set: admitted entry ids scored by the time their slot lapses
--   9 watching  hash: entry id -> open Watch streams on every node
--  10 detached  sorted set: waiting entries nobody watches, scored by since when
--  11 nodes     sorted set: node id -> last heartbeat
--  12 log       stream: what changed, in order; every node's replica is fed from it
--  13 (some scripts) the calling node's hash: entry id -> its Watch streams there;
--              (open.lua) the pre-queue's manifest
local meta, fpk, ent, pre, active, watching, detached, log =
  KEYS[1], KEYS[2], KEYS[3], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[12]

local function qkey(tier) return KEYS[4 + tier] end

local function get(id)
  local r = redis.call('HGET', ent, id)
  if not r then return nil end
  local st, tier, seq, iat, fp = string.match(r, '^(%a)|(%d)|(%d+)|(%d+)|(.*)$')
  if not st then return nil end
  return { st = st, tier = tonumber(tier), seq = tonumber(seq), iat = iat, fp = fp }
end

local function put(id, e)
  redis.call('HSET', ent, id,
    e.st .. '|' .. e.tier .. '|' .. string.format('%d', e.seq) .. '|' .. e.iat .. '|' .. e.fp)
end

local function waiting_total()
  return redis.call('ZCARD', KEYS[4]) + redis.call('ZCARD', KEYS[5])
    + redis.call('ZCARD', KEYS[6]) + redis.call('ZCARD', pre)
end

local function position(id, e)
  if e.st ~= 'W' then return 0 end
  local ahead = 0
  for t = e.tier + 1, 2 do ahead = ahead + redis.call('ZCARD', qkey(t)) end
  local rank = redis.call('ZRANK', qkey(e.tier), id)
  if not rank then return 0 end
  return ahead + rank + 1
end

-- Takes an entry out of wherever it is (queue, pre-queue, active set, grace list).
local function unplace(id, e)
  if e.st == 'W' then
    redis.call('ZREM', qkey(e.tier), id)
  elseif e.st == 'P' then
    redis.call('ZREM', pre, id)
  elseif e.st == 'A' or e.st == 'S' then
    redis.call('ZREM', active, id)
  end
  redis.call('ZREM', detached, id)
end

local function num(x) return string.format('%d', x) end

-- `n` of an entry's streams closed at `at`: when none is left on any node, an entry still in
-- line (or in the pre-queue) starts its grace period.
local function streams_closed(id, n, at)
  local left = redis.call('HINCRBY', watching, id, -n)
  if left <= 0 then
    redis.call('HDEL', watching, id)
    local e = get(id)
    if e and (e.st == 'W' or e.st == 'P') then redis.call('ZADD', detached, at, id) end
  end
end
