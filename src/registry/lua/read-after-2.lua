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
  -- Everything was trimmed (by age): the oldest position is the newest one.
  oldest_n = tonumber(redis.call('HGET', KEYS[2], 'seq'))
  oldest_id = '0-0'
  if redis.call('EXISTS', KEYS[1]) == 1 then
    local info = redis.call('XINFO', 'STREAM', KEYS[1])
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then oldest_id = info[i + 1] end
    end
  end
end
if epoch ~= ARGV[1] or tonumber(ARGV[3]) < oldest_n then return { 'expired', epoch, oldest_id, oldest_n, {} } end
return { 'ok', epoch, oldest_id, oldest_n, redis.call('XRANGE', KEYS[1], '(' .. ARGV[2], '+', 'COUNT', ARGV[4]) }
