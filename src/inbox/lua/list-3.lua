--[[
list-3: one page of a user's live messages after a seq, oldest first (reads only).
KEYS[1] HASH messages   KEYS[2] ZSET by seq   KEYS[3] ZSET by expiry
ARGV[1] after seq   ARGV[2] most messages   ARGV[3] now ms
Returns { 1 if live messages follow the page else 0, { message… } }.
]]
local k = user_keys()
local limit = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local page = {}
local more = 0
each_after(k, ARGV[1], function(id)
  if not is_live(k, id, now) then return true end
  if #page >= limit then
    more = 1
    return false
  end
  table.insert(page, read_message(k, id))
  return true
end)
return { more, page }
