--[[
lease-2: renews a node's lease, timed by the Redis server clock so nodes' clocks need not agree.
KEYS[1] leases ZSET (node id → expiry ms)   KEYS[2] resync SET (nodes told to sync, see forget-2)
ARGV[1] node id   ARGV[2] lease TTL ms
Returns { held, now }: held is 1 if the node held a live lease and owes no sync, 0 if it had none,
it had lapsed, or a reaper asked it to sync: its sessions may have been reaped, or Redis lost its
data, so the node must sync its sessions. now is the Redis server time in ms, for the node's clock.
]]
local now = time_ms()
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local told = redis.call('SREM', KEYS[2], ARGV[1]) == 1
if expiry and tonumber(expiry) >= now and not told then return { 1, now } end
return { 0, now }
