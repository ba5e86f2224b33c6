--[[
store-4: keeps a message in a user's inbox, making room or refusing when the inbox is full.
An id already stored changes nothing. The cap counts live messages; dropped ones are the oldest live.
KEYS[1] HASH messages   KEYS[2] ZSET by seq   KEYS[3] ZSET by expiry   KEYS[4] ZSET shard sweep index
ARGV[1] message id   ARGV[2] user key   ARGV[3] record JSON   ARGV[4] attempts
ARGV[5] client-type filter, "\n"-wrapped ('' for every type)
ARGV[6] required types, "\n"-wrapped ('' unless each_client_type)
ARGV[7] expiresAtMs   ARGV[8] now ms   ARGV[9] most live messages   ARGV[10] 'drop_oldest' or 'refuse_new'
ARGV[11] ms the user's keys outlive their latest expiry
Returns { 'duplicate' }, { 'full', live count }, or { 'stored', seq, { dropped message… } } (oldest first).
]]
local k = user_keys()
local id = ARGV[1]
if redis.call('HEXISTS', k.hash, 'm:' .. id) == 1 then return { 'duplicate' } end
local now = tonumber(ARGV[8])
local cap = tonumber(ARGV[9])
local live = redis.call('ZCOUNT', k.expiry, '(' .. ARGV[8], '+inf')
local dropped = {}
if live >= cap then
  if ARGV[10] ~= 'drop_oldest' or cap < 1 then return { 'full', live } end
  local excess = live - cap + 1
  each_after(k, '-inf', function(old)
    if is_live(k, old, now) then
      table.insert(dropped, take(k, ARGV[2], old))
      excess = excess - 1
    end
    return excess > 0
  end)
end

local seq = redis.call('HINCRBY', k.hash, 'seq', 1)
redis.call('HSET', k.hash, 'm:' .. id, ARGV[3], 'n:' .. id, ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', k.hash, 't:' .. id, ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', k.hash, 'q:' .. id, ARGV[6]) end
redis.call('ZADD', k.order, seq, id)
redis.call('ZADD', k.expiry, ARGV[7], id)
redis.call('ZADD', k.due, ARGV[7], ARGV[2] .. '\0\0' .. id)

-- The user's keys go a grace period after the latest expiry, so an inbox nobody sweeps still leaves;
-- never sooner than a grace period from now (Redis's clock), so a message stored already expired,
-- or a node clock far behind, cannot delete the inbox before a sweep reports what it holds.
local latest = redis.call('HGET', k.hash, 'x')
if not latest or tonumber(latest) < tonumber(ARGV[7]) then
  latest = ARGV[7]
  redis.call('HSET', k.hash, 'x', latest)
end
local until_ms = math.max(tonumber(latest), time_ms()) + tonumber(ARGV[11])
redis.call('PEXPIREAT', k.hash, until_ms)
redis.call('PEXPIREAT', k.order, until_ms)
redis.call('PEXPIREAT', k.expiry, until_ms)
return { 'stored', seq, dropped }
