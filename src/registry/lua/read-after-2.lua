--[[
read-after-2: presence events after a position, for a reader resuming its stream.
KEYS[1] events STREAM   KEYS[2] epoch HASH
ARGV[1] epoch the position belongs to   ARGV[2] id of the last event seen ('0-0' for none)
ARGV[3] sequence number of that event (0 for none)   ARGV[4] max events
Returns { status, current epoch, oldest position id, oldest position sequence number, entries }:
the oldest position is just before the oldest event still held (resuming from it misses nothing
held); status is 'ok' (entries are XRANGE replies) or 'expired' (no entries) when events after the
given position were already trimmed, or the position belongs to another epoch (Redis lost its data).
]]
local epoch = ensure_epoch(KEYS[2])
local oldest_id, oldest_n = oldest_position(KEYS[1], tonumber(redis.call('HGET', KEYS[2], 'seq')))
if epoch ~= ARGV[1] or tonumber(ARGV[3]) < oldest_n then return { 'expired', epoch, oldest_id, oldest_n, {} } end
return { 'ok', epoch, oldest_id, oldest_n, redis.call('XRANGE', KEYS[1], '(' .. ARGV[2], '+', 'COUNT', ARGV[4]) }
