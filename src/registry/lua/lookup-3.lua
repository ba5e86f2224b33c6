--[[
lookup-3: a user's sessions, for the push hot path: one round trip.
KEYS[1] users HASH   KEYS[2] sessions HASH   KEYS[3] seen HASH
ARGV[1] user id
Returns { records JSON..., last_seen_at... } (two lists of equal length; missing entries false).
]]
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then return { {}, {} } end
local sids = cjson.decode(json)
return { redis.call('HMGET', KEYS[2], unpack(sids)), redis.call('HMGET', KEYS[3], unpack(sids)) }
