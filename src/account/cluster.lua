-- tollgate's server-side scripts (account/cluster.rs loads them; policy/shared.rs says why).
-- Numbers go back into Redis through fmt(): Lua would write a large one as 1e+15.

--! lease
-- One quota's lease for one instance, atomically (the rules of policy/budget.rs, one level up).
-- KEYS[1]: the quota's hash for its period; KEYS[2]: the instances (sorted set: expiry, ms).
-- ARGV: instance, batch seq, cap, drain (1: a rate limit), ttl_ms, used, returned, want,
--       need, reset (1: spent starts over).
-- Returns {granted, held, spent, out}. A batch resent after a lost answer (same seq) changes
-- nothing and gets the first answer's grant again.
local function num(v) return tonumber(v) or 0 end
local function fmt(x) return string.format('%d', x) end
local q, inst = KEYS[1], ARGV[1]
local hf, sf, gf = 'h:' .. inst, 's:' .. inst, 'g:' .. inst
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local v = redis.call('HMGET', q, 'spent', 'out', 'at', hf, sf, gf)
local spent, out, at, held = num(v[1]), num(v[2]), num(v[3]), num(v[4])
if v[5] == ARGV[2] then
  return {num(v[6]), held, spent, out}
end
local cap, drain, ttl = num(ARGV[3]), ARGV[4] == '1', num(ARGV[5])
local used, ret, want, need = num(ARGV[6]), num(ARGV[7]), num(ARGV[8]), num(ARGV[9])
if ARGV[10] == '1' then spent = 0 end
if drain then
  -- The bucket drains at cap per minute, by Redis's clock.
  if spent <= 0 or at == 0 then
    at = now
  elseif cap > 0 then
    local d = math.floor((now - at) * cap / 60000)
    if d > 0 then
      spent = math.max(0, spent - d)
      at = at + math.floor(d * 60000 / cap)
    end
  end
end
spent = spent + used
-- What was used or returned leaves the instance's lease (never below zero: a lease taken
-- back while the instance was counted as gone).
local back = math.max(0, math.min(held, used + ret))
held = held - back
out = math.max(0, out - back)
local free = cap - spent - out
if want > 0 and free < want and out > held then
  -- Leases of instances that went silent return to the pool.
  local all = redis.call('HGETALL', q)
  for i = 1, #all, 2 do
    local f = all[i]
    if string.sub(f, 1, 2) == 'h:' and f ~= hf then
      local other = string.sub(f, 3)
      local exp = redis.call('ZSCORE', KEYS[2], other)
      if not exp or tonumber(exp) < now then
        out = math.max(0, out - num(all[i + 1]))
        redis.call('HDEL', q, f, 's:' .. other, 'g:' .. other)
      end
    end
  end
  free = cap - spent - out
end
local g = 0
if want > 0 and free > 0 then
  -- At most half of what is free beyond the need: the last of a cap is shared.
  g = math.min(want, math.max(need, math.floor(free / 2)), free)
end
held = held + g
out = out + g
redis.call('HSET', q, 'spent', fmt(spent), 'out', fmt(out), 'at', fmt(at), hf, fmt(held),
  sf, ARGV[2], gf, fmt(g))
if ttl > 0 then redis.call('PEXPIRE', q, ttl) end
return {g, held, spent, out}

--! alive
-- This instance is alive for ttl_ms more; instances past their expiry are forgotten.
-- KEYS[1]: the instances (sorted set). ARGV: instance, ttl_ms, seen (1: this instance has
-- announced itself before).
-- Returns {instances alive, lapsed (1: it was counted as gone meanwhile)}.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local prev = redis.call('ZSCORE', KEYS[1], ARGV[1])
local lapsed = 0
if ARGV[3] == '1' and (not prev or tonumber(prev) < now) then lapsed = 1 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return {redis.call('ZCARD', KEYS[1]), lapsed}

--! spend
-- One scope's spend for one day, added once per batch.
-- KEYS[1]: the hash. ARGV: instance, batch seq, ttl_ms, then field, amount pairs.
-- Returns every instance's totals of the fields named, in their order.
local names = {}
for i = 4, #ARGV, 2 do names[#names + 1] = ARGV[i] end
if redis.call('HGET', KEYS[1], 's:' .. ARGV[1]) ~= ARGV[2] then
  for i = 4, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
  redis.call('HSET', KEYS[1], 's:' .. ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return redis.call('HMGET', KEYS[1], unpack(names))
