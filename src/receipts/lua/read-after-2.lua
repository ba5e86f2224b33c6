--[[
read-after-2: receipt events after a position, for a reader resuming. Drops the events past their
age first, so what is retained does not depend on when the last event was appended.
KEYS[1] events STREAM   KEYS[2] epoch HASH
ARGV[1] epoch the position belongs to   ARGV[2] id of the last event seen ('0-0' for none)
ARGV[3] number of that event (0 for none)   ARGV[4] max events   ARGV[5] retention ms
Returns { status, current epoch, oldest position id, oldest position number, entries }: the
oldest position is just before the oldest event still held (resuming from it misses nothing
held); status is 'ok' (entries are XRANGE replies), 'expired' (no entries) when events after the
given position were already trimmed or the position belongs to another epoch (Redis lost its
data), or 'ahead' when the position is past the newest event.
]]
trim_by_age(KEYS[1], ARGV[5])
local epoch = ensure_epoch(KEYS[2])
local newest_n = tonumber(redis.call('HGET', KEYS[2], 'seq'))
local oldest_id, oldest_n = oldest_position(KEYS[1], newest_n)
local at = tonumber(ARGV[3])
if epoch ~= ARGV[1] or at < oldest_n then return { 'expired', epoch, oldest_id, oldest_n, {} } end
if at > newest_n then return { 'ahead', epoch, oldest_id, oldest_n, {} } end
if tonumber(ARGV[4]) < 1 then return { 'ok', epoch, oldest_id, oldest_n, {} } end
return { 'ok', epoch, oldest_id, oldest_n, redis.call('XRANGE', KEYS[1], '(' .. ARGV[2], '+', 'COUNT', ARGV[4]) }
