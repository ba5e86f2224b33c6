--[[
forget-1: drops a reaped node's lease, unless the node renewed it meanwhile (it was alive after all
and will sync its sessions back).
KEYS[1] leases ZSET
ARGV[1] node id
Returns 1 if the lease was dropped.
]]
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if expiry and tonumber(expiry) < time_ms() then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
