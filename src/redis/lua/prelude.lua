--[[
The prelude of every pushgate Lua script (src/redis/scripts.ts prepends it, before the room's own
`_common.lua` if it has one): helpers any script may use, whichever room it belongs to.
]]

-- Now on the Redis server's clock, in ms: nodes' own clocks need not agree.
local function time_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

--[[
Event streams with an epoch (the registry's presence feeds, the receipt events): entries carry a
field `n`, their number (1, 2, 3…), and an epoch HASH holds `id`, the stream's identity, and
`seq`, the last number given. A reader's position is { epoch, entry id, n }.
]]

-- The stream's identity: created on first use, new after Redis lost its data.
local function ensure_epoch(epoch_key)
  local epoch = redis.call('HGET', epoch_key, 'id')
  if not epoch then
    local t = redis.call('TIME')
    epoch = t[1] .. string.format('%06d', tonumber(t[2]))
    redis.call('HSET', epoch_key, 'id', epoch)
    redis.call('HSETNX', epoch_key, 'seq', 0)
  end
  return epoch
end

-- The newest position of a stream: epoch, last entry id ('0-0' if none is held), the last number given.
local function feed_position(events_key, epoch_key)
  local epoch = ensure_epoch(epoch_key)
  local last = redis.call('XREVRANGE', events_key, '+', '-', 'COUNT', 1)
  return epoch, last[1] and last[1][1] or '0-0', tonumber(redis.call('HGET', epoch_key, 'seq'))
end

-- The position just before the oldest entry still held (resuming from it misses nothing held):
-- its id and number. With every entry trimmed (or none appended yet) it is the newest position,
-- numbered `newest_n`.
local function oldest_position(events_key, newest_n)
  local first = redis.call('XRANGE', events_key, '-', '+', 'COUNT', 1)[1]
  if first then
    local oldest_n
    local fields = first[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'n' then oldest_n = tonumber(fields[i + 1]) - 1 end
    end
    -- Any id below the oldest held one reads from it; trimmed ids are gone anyway.
    local ms, seq = string.match(first[1], '^(%d+)-(%d+)$')
    if tonumber(seq) > 0 then return ms .. '-' .. (tonumber(seq) - 1), oldest_n end
    return (tonumber(ms) - 1) .. '-0', oldest_n
  end
  local oldest_id = '0-0'
  if redis.call('EXISTS', events_key) == 1 then
    local info = redis.call('XINFO', 'STREAM', events_key)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then oldest_id = info[i + 1] end
    end
  end
  return oldest_id, newest_n
end
