--[[
lookup-many-3: the sessions of many users of one shard, for a batch push: one round trip per shard
whatever the number of users, one index range per user, no decoding.
KEYS[1] by-user ZSET   KEYS[2] sessions HASH   KEYS[3] seen HASH
ARGV[1…] user keys (see _common.lua), each user once
Returns { counts, records JSON..., last_seen_at... }: counts[u] is the number of index entries of
ARGV[u], whose records follow those of ARGV[u-1] in the two lists (of equal length; missing
entries false). Reads go CHUNK values per HMGET, so no command unpacks more than CHUNK values.
]]
local counts = {}
local sids = {}
for u = 1, #ARGV do
  local members = redis.call('ZRANGEBYLEX', KEYS[1], user_min(ARGV[u]), user_max(ARGV[u]))
  local skip = #ARGV[u] + 3
  counts[u] = #members
  for i = 1, #members do sids[#sids + 1] = string.sub(members[i], skip) end
end
if #sids == 0 then return { counts, {}, {} } end
return { counts, hmget_all(KEYS[2], sids), hmget_all(KEYS[3], sids) }
