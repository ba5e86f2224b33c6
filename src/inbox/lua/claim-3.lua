--[[
claim-3: what a newly connected session of one client type replays: live messages after a seq
whose filter admits the type and which the type has not acked, oldest first; counts each one's
attempts up by one.
KEYS[1] HASH messages   KEYS[2] ZSET by seq   KEYS[3] ZSET by expiry
ARGV[1] client type   ARGV[2] after seq   ARGV[3] most messages   ARGV[4] now ms
Returns { message… } with the new attempt counts.
]]
local k = user_keys()
local client_type = ARGV[1]
local limit = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local claimed = {}
if limit < 1 then return claimed end
each_after(k, ARGV[2], function(id)
  if is_live(k, id, now) then
    local f = redis.call('HMGET', k.hash, 't:' .. id, 'a:' .. id)
    if (not f[1] or has_type(f[1], client_type)) and not has_type(f[2], client_type) then
      redis.call('HINCRBY', k.hash, 'n:' .. id, 1)
      table.insert(claimed, read_message(k, id))
    end
  end
  return #claimed < limit
end)
return claimed
