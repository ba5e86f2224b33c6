--[[
lookup-3: a user's sessions, for the push hot path: one round trip.
KEYS[1] user SET   KEYS[2] sessions HASH   KEYS[3] seen HASH
Returns { records JSON..., last_seen_at... } (two lists of equal length; missing entries false).
]]
local sids = redis.call('SMEMBERS', KEYS[1])
if #sids == 0 then return { {}, {} } end
return { redis.call('HMGET', KEYS[2], unpack(sids)), redis.call('HMGET', KEYS[3], unpack(sids)) }
