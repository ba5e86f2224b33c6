--[[
lookup-3: a user's sessions, for the push hot path: one round trip, one index range, no decoding.
KEYS[1] by-user ZSET   KEYS[2] sessions HASH   KEYS[3] seen HASH
ARGV[1] user key (see _common.lua)
Returns { records JSON..., last_seen_at... } (two lists of equal length; missing entries false).
]]
local members = redis.call('ZRANGEBYLEX', KEYS[1], user_min(ARGV[1]), user_max(ARGV[1]))
if #members == 0 then return { {}, {} } end
local skip = #ARGV[1] + 3
local sids = {}
for i = 1, #members do sids[i] = string.sub(members[i], skip) end
-- The common case reads in place; a user with more sessions than a chunk is read in chunks.
if #sids <= CHUNK then return { redis.call('HMGET', KEYS[2], unpack(sids)), redis.call('HMGET', KEYS[3], unpack(sids)) } end
return { hmget_all(KEYS[2], sids), hmget_all(KEYS[3], sids) }
