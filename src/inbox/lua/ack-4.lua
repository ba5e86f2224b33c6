--[[
ack-4: a session of one client type acked a message. `any_session` messages (no q: field) go at
the first ack; `each_client_type` ones once every required type acked (at once if none is
required). An ack by a type that is not required, or that already acked, records nothing.
KEYS[1] HASH messages   KEYS[2] ZSET by seq   KEYS[3] ZSET by expiry   KEYS[4] ZSET shard sweep index
ARGV[1] message id   ARGV[2] user key   ARGV[3] client type
Returns 'removed', 'kept' or 'unknown' (not stored).
]]
local k = user_keys()
local id = ARGV[1]
local f = redis.call('HMGET', k.hash, 'm:' .. id, 'q:' .. id, 'a:' .. id)
if not f[1] then return 'unknown' end
local required = f[2]
if not required or required == '\n' then
  take(k, ARGV[2], id)
  return 'removed'
end
if not has_type(required, ARGV[3]) or has_type(f[3], ARGV[3]) then return 'kept' end
-- acked holds required types only, each once: all acked when it holds as many as required.
local acked = (f[3] or '\n') .. ARGV[3] .. '\n'
if type_count(acked) >= type_count(required) then
  take(k, ARGV[2], id)
  return 'removed'
end
redis.call('HSET', k.hash, 'a:' .. id, acked)
return 'kept'
