--[[
lapsed-1: nodes whose lease has lapsed, by the Redis server clock.
KEYS[1] leases ZSET
ARGV[1] most node ids to return
Returns node ids.
]]
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. time_ms(), 'LIMIT', 0, tonumber(ARGV[1]))
