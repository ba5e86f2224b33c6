--[[
touch-1: refreshes last_seen_at of several sessions at once (the edge batches pongs).
Sessions no longer registered are skipped, so a late batch cannot resurrect one: every registered
session has a `seen` entry (register writes it, every removal deletes it), so the entry itself
says whether the session is registered, and a touch costs one read and at most one write.
KEYS[1] seen HASH
ARGV pairs: session id, last_seen_at ms
Returns the number of sessions updated.
]]
local updated = 0
for i = 1, #ARGV, 2 do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if current then
    -- A value that is not a number (written by hand) is overwritten rather than failing the batch.
    local at = tonumber(ARGV[i + 1]) or 0
    if at > (tonumber(current) or 0) then
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
      updated = updated + 1
    end
  end
end
return updated
