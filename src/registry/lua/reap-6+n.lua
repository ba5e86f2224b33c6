--[[
reap-6+n: removes sessions of a node whose lease lapsed and announces each with reason node_lost.
Several reapers may race over the same node: a session is removed, and announced, only by the
reaper whose SREM took it out of the node's set, so each departure is announced exactly once.
KEYS[1] sessions HASH   KEYS[2] seen HASH   KEYS[3] node SET (the dead node's)   KEYS[4] events STREAM
KEYS[5] epoch HASH    KEYS[6] reaped marker of the dead node
KEYS[6 + i] user SET of the i-th session
ARGV[1] dead node id   ARGV[2] event time ms   ARGV[3] events to retain   ARGV[4] marker TTL ms
ARGV[4 + i] i-th session id
Returns { sessions removed, id of the last event appended ('' if none) }.
]]
ensure_epoch(KEYS[5])
local keys = { sessions = KEYS[1], seen = KEYS[2], events = KEYS[4], epoch = KEYS[5] }
local removed = 0
for i = 1, #ARGV - 4 do
  local sid = ARGV[4 + i]
  if redis.call('SREM', KEYS[3], sid) == 1 then
    local record = redis.call('HGET', KEYS[1], sid)
    -- A record owned by another node (the id was reused or re-registered elsewhere) stays.
    if record and cjson.decode(record).nodeId == ARGV[1] then
      remove_session(keys, KEYS[6 + i], sid, record, 'node_lost', ARGV[2], ARGV[3])
      removed = removed + 1
    end
  end
end
if removed > 0 then redis.call('SET', KEYS[6], '1', 'PX', ARGV[4]) end
return { removed, last_event_id }
