--[[
put-1: writes a whole receipt, replacing any kept under its message id, kept for its retention.
KEYS[1] the receipt's HASH
ARGV[1] retention ms   ARGV[2..] field, value pairs (see _common.lua)
Returns 1.
]]
redis.call('DEL', KEYS[1])
-- In slices: unpack has a limit (a few thousand values), and a receipt may have many sessions.
local SLICE = 1000
for first = 2, #ARGV, SLICE do
  redis.call('HSET', KEYS[1], unpack(ARGV, first, math.min(first + SLICE - 1, #ARGV)))
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
