--[[
snapshot-5: sessions of some users (or of the whole shard) together with the feed position they
reflect, read atomically so no change falls between the two.
KEYS[1] sessions HASH   KEYS[2] seen HASH   KEYS[3] users HASH   KEYS[4] events STREAM   KEYS[5] epoch HASH
ARGV user ids; none means every session of the shard
Returns { epoch, last event id ('0-0' if none), its sequence number, records JSON..., last_seen_at... }.
]]
local epoch, position, seq = feed_position(KEYS[4], KEYS[5])
local sids = {}
if #ARGV == 0 then
  sids = redis.call('HKEYS', KEYS[1])
else
  for _, user_id in ipairs(ARGV) do
    local json = redis.call('HGET', KEYS[3], user_id)
    if json then
      for _, sid in ipairs(cjson.decode(json)) do sids[#sids + 1] = sid end
    end
  end
end
if #sids == 0 then return { epoch, position, seq, {}, {} } end
return { epoch, position, seq, redis.call('HMGET', KEYS[1], unpack(sids)), redis.call('HMGET', KEYS[2], unpack(sids)) }
