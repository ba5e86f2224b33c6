--[[
snapshot-4+n: sessions of some users (or of the whole shard) together with the feed position they
reflect, read atomically so no change falls between the two.
KEYS[1] sessions HASH   KEYS[2] seen HASH   KEYS[3] events STREAM   KEYS[4] epoch HASH
KEYS[5..] user SETs; none means every session of the shard
Returns { epoch, last event id ('0-0' if none), its sequence number, records JSON..., last_seen_at... }.
]]
local epoch = ensure_epoch(KEYS[4])
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local position = last[1] and last[1][1] or '0-0'
local seq = tonumber(redis.call('HGET', KEYS[4], 'seq'))
local sids = {}
if #KEYS == 4 then
  sids = redis.call('HKEYS', KEYS[1])
else
  for i = 5, #KEYS do
    for _, sid in ipairs(redis.call('SMEMBERS', KEYS[i])) do sids[#sids + 1] = sid end
  end
end
if #sids == 0 then return { epoch, position, seq, {}, {} } end
return { epoch, position, seq, redis.call('HMGET', KEYS[1], unpack(sids)), redis.call('HMGET', KEYS[2], unpack(sids)) }
