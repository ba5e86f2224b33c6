--[[
expire-4: removes those of a user's messages a sweep found due, after checking again that each is
still in the shard's sweep index and due: of nodes sweeping at once, exactly one takes each.
KEYS[1] HASH messages   KEYS[2] ZSET by seq   KEYS[3] ZSET by expiry   KEYS[4] ZSET shard sweep index
ARGV[1] user key   ARGV[2] now ms   ARGV[3…] message ids
Returns { message… } that this call removed (a sweep member whose message is gone is dropped unreported).
]]
local k = user_keys()
local now = tonumber(ARGV[2])
local expired = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local due = redis.call('ZSCORE', k.due, ARGV[1] .. '\0\0' .. id)
  if due and tonumber(due) <= now then
    local message = take(k, ARGV[1], id)
    if message then table.insert(expired, message) end
  end
end
return expired
