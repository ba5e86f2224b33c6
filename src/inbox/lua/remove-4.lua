--[[
remove-4: removes the given messages of a user, or all of them (expired ones included).
KEYS[1] HASH messages   KEYS[2] ZSET by seq   KEYS[3] ZSET by expiry   KEYS[4] ZSET shard sweep index
ARGV[1] user key   ARGV[2] 'all' or 'ids'   ARGV[3…] message ids (with 'ids')
Returns the ids of the stored messages it removed.
]]
local k = user_keys()
local removed = {}
local function remove(id)
  if take(k, ARGV[1], id) then table.insert(removed, id) end
end
if ARGV[2] == 'all' then
  for _, id in ipairs(redis.call('ZRANGE', k.order, 0, -1)) do remove(id) end
else
  for i = 3, #ARGV do remove(ARGV[i]) end
end
return removed
