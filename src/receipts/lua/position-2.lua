--[[
position-2: the newest position of the receipt events, where a live reader starts.
KEYS[1] events STREAM   KEYS[2] epoch HASH
Returns { epoch, last event id ('0-0' if none is held), the last number given (0 if none) }.
]]
local epoch = ensure_epoch(KEYS[2])
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
return { epoch, last[1] and last[1][1] or '0-0', tonumber(redis.call('HGET', KEYS[2], 'seq')) }
