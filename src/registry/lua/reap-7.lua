--[[
reap-7: removes up to a batch of sessions of a node whose lease lapsed, announcing each with reason
node_lost, in one round trip. SPOP takes each session out of the dead node's set atomically, so
however many reapers race over the same node, each session is removed and announced exactly once.
KEYS[1] sessions HASH   KEYS[2] seen HASH   KEYS[3] users HASH   KEYS[4] node SET (the dead node's)
KEYS[5] events STREAM   KEYS[6] epoch HASH  KEYS[7] reaped marker of the dead node
ARGV[1] dead node id   ARGV[2] event time ms   ARGV[3] events to retain   ARGV[4] marker TTL ms
ARGV[5] batch size
Returns { sessions removed, id of the last event appended ('' if none), sessions left in the set }.
]]
ensure_epoch(KEYS[6])
local keys = { sessions = KEYS[1], seen = KEYS[2], users = KEYS[3], events = KEYS[5], epoch = KEYS[6] }
local removed = 0
for _, sid in ipairs(redis.call('SPOP', KEYS[4], tonumber(ARGV[5]))) do
  local record = redis.call('HGET', KEYS[1], sid)
  -- A record owned by another node (re-registered elsewhere meanwhile) stays.
  if record and cjson.decode(record).nodeId == ARGV[1] then
    remove_session(keys, sid, record, 'node_lost', ARGV[2], ARGV[3])
    removed = removed + 1
  end
end
if removed > 0 then redis.call('SET', KEYS[7], '1', 'PX', ARGV[4]) end
return { removed, last_event_id, redis.call('SCARD', KEYS[4]) }
