--[[
touch-2: refreshes last_seen_at of several sessions at once (the edge batches pongs).
Sessions no longer registered are skipped, so a late batch cannot resurrect one.
KEYS[1] sessions HASH   KEYS[2] seen HASH
ARGV pairs: session id, last_seen_at ms
Returns the number of sessions updated.
]]
local updated = 0
for i = 1, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    -- A value that is not a number (written by hand) is overwritten rather than failing the batch.
    local current = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0') or 0
    local at = tonumber(ARGV[i + 1]) or 0
    if at > current then
      redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
      updated = updated + 1
    end
  end
end
return updated
