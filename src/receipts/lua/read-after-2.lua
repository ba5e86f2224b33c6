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
local oldest_id, oldest_n
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if first then
  local fields = first[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'n' then oldest_n = tonumber(fields[i + 1]) - 1 end
  end
  -- Any id below the oldest held one reads from it; trimmed ids are gone anyway.
  local ms, seq = string.match(first[1], '^(%d+)-(%d+)$')
  if tonumber(seq) > 0 then oldest_id = ms .. '-' .. (tonumber(seq) - 1) else oldest_id = (tonumber(ms) - 1) .. '-0' end
else
  -- Everything was trimmed (or nothing appended yet): the oldest position is the newest one.
  oldest_n = newest_n
  oldest_id = '0-0'
  if redis.call('EXISTS', KEYS[1]) == 1 then
    local info = redis.call('XINFO', 'STREAM', KEYS[1])
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then oldest_id = info[i + 1] end
    end
  end
end
local at = tonumber(ARGV[3])
if epoch ~= ARGV[1] or at < oldest_n then return { 'expired', epoch, oldest_id, oldest_n, {} } end
if at > newest_n then return { 'ahead', epoch, oldest_id, oldest_n, {} } end
if tonumber(ARGV[4]) < 1 then return { 'ok', epoch, oldest_id, oldest_n, {} } end
return { 'ok', epoch, oldest_id, oldest_n, redis.call('XRANGE', KEYS[1], '(' .. ARGV[2], '+', 'COUNT', ARGV[4]) }
