--[[
position-2: the newest position of the receipt events, where a live reader starts.
KEYS[1] events STREAM   KEYS[2] epoch HASH
Returns { epoch, last event id ('0-0' if none is held), the last number given (0 if none) }.
]]
return { feed_position(KEYS[1], KEYS[2]) }
