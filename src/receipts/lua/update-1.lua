--[[
update-1: changes a kept receipt; a receipt that is not kept (never put, or past its retention)
stays absent. The receipt keeps its expiry.
KEYS[1] the receipt's HASH
ARGV[1] stored: '1', '0' or '' (unchanged)   ARGV[2] expiresAtMs or '' (unchanged)
ARGV[3] removal JSON or '' (unchanged)
ARGV[4..] session id, session JSON pairs: each session's entry is set (a later pair wins)
Returns 1 if the receipt was kept and changed, 0 if it is not kept.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 4, #ARGV, 2 do
  local field = 's:' .. ARGV[i]
  local old = redis.call('HGET', KEYS[1], field)
  -- A new session goes after every other; a replaced one keeps its place.
  local ordinal = old and string.match(old, '^(%d+) ')
  if not ordinal then ordinal = redis.call('HINCRBY', KEYS[1], 'ns', 1) - 1 end
  redis.call('HSET', KEYS[1], field, ordinal .. ' ' .. ARGV[i + 1])
end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'stored', ARGV[1]) end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'x', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'rm', ARGV[3]) end
return 1
