--[[
forget-2: after reaping a node, drops its lease, unless the node renewed it meanwhile: it was alive
after all and may have synced sessions back before the reap removed them, so it is told to sync
again at its next renewal.
KEYS[1] leases ZSET   KEYS[2] resync SET
ARGV[1] node id
Returns 1 if the lease was dropped, 0 if the node was told to sync instead.
]]
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if expiry and tonumber(expiry) < time_ms() then return redis.call('ZREM', KEYS[1], ARGV[1]) end
if expiry then redis.call('SADD', KEYS[2], ARGV[1]) end
return 0
