--[[
touch-n: refreshes last_seen_at of several sessions of one shard at once (the edge batches pongs).
Sessions no longer registered are skipped, so a late batch cannot resurrect one: every registered
session has an `s:<sid>` field (register writes it, every removal deletes it), so the field itself
says whether the session is registered, and a touch costs one read and at most one write.
KEYS[i] the HASH of the user of the i-th session (a user with several sessions appears several times)
ARGV[2i-1] the i-th session's last_seen_at field, `s:<session id>` (built by the caller: cheaper than in Lua)
ARGV[2i] its last_seen_at ms
Returns the number of sessions updated.
]]
local updated = 0
for i = 1, #KEYS do
  local field = ARGV[2 * i - 1]
  local current = redis.call('HGET', KEYS[i], field)
  if current then
    -- A value that is not a number (written by hand) is overwritten rather than failing the batch.
    local at = tonumber(ARGV[2 * i]) or 0
    if at > (tonumber(current) or 0) then
      redis.call('HSET', KEYS[i], field, ARGV[2 * i])
      updated = updated + 1
    end
  end
end
return updated
