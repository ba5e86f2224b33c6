--[[
lease-1: renews a node's lease, timed by the Redis server clock so nodes' clocks need not agree.
KEYS[1] leases ZSET (node id → expiry ms)
ARGV[1] node id   ARGV[2] lease TTL ms
Returns 1 if the node held a live lease, 0 if it had none or it had lapsed: its sessions may have
been reaped, or Redis lost its data, so the node must sync its sessions.
]]
local now = time_ms()
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if expiry and tonumber(expiry) >= now then return 1 end
return 0
