--[[
Shared helpers of the receipt store's scripts, prepended to each when it is loaded (after
src/redis/lua/prelude.lua).

A receipt is a HASH (src/receipts/receipt-keys.ts) with fields:
  f         the fixed part (message id, user id, event, sent at, mode) as JSON: opaque here
  stored    '1' or '0'
  x         expiresAtMs
  rm        the removal as JSON (absent until removed)
  ns        the ordinal the next new session gets
  s:<sid>   '<ordinal> <session JSON>': the ordinal keeps sessions in the order first sent
            (a hash has no order of its own once it outgrows listpack encoding)
No script decodes JSON: a stored value Lua cannot read must never wedge a node.

Receipt events are entries of one stream with fields kind, messageId, userId, sessionId,
clientType, atMs, replay, and n: their number (1, 2, 3…), so a reader that sees a number skipped
knows events in between were trimmed before it read them. The epoch key is a HASH: `id` the
stream's identity, `seq` the last number given (ensure_epoch, feed_position and oldest_position
come from the prelude).
]]

-- Drops the events older than `retention_ms` (entry ids are the server's clock at append).
local function trim_by_age(events_key, retention_ms)
  local min_ms = time_ms() - tonumber(retention_ms)
  if min_ms > 0 then redis.call('XTRIM', events_key, 'MINID', min_ms .. '-0') end
end
