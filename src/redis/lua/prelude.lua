--[[
The prelude of every pushgate Lua script (src/redis/scripts.ts prepends it, before the room's own
`_common.lua` if it has one): helpers any script may use, whichever room it belongs to.
]]

-- Now on the Redis server's clock, in ms: nodes' own clocks need not agree.
local function time_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
