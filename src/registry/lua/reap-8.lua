--[[
reap-8: removes up to a batch of sessions of a node whose lease lapsed, announcing each with reason
node_lost, in one round trip. SPOP takes each session out of the dead node's set atomically, so
however many reapers race over the same node, each session is removed and announced exactly once.
The set's members name each session's user (see _common.lua): no record is read but to announce it.
KEYS[1] sessions HASH   KEYS[2] seen HASH   KEYS[3] by-user ZSET   KEYS[4] owner HASH
KEYS[5] node SET (the dead node's)   KEYS[6] events STREAM   KEYS[7] epoch HASH
KEYS[8] reaped marker of the dead node
ARGV[1] dead node id   ARGV[2] event time ms   ARGV[3] events to retain   ARGV[4] marker TTL ms
ARGV[5] batch size
Returns { sessions removed, id of the last event appended ('' if none), sessions left in the set }.
]]
ensure_epoch(KEYS[7])
local keys = { sessions = KEYS[1], seen = KEYS[2], by_user = KEYS[3], owner = KEYS[4], events = KEYS[6], epoch = KEYS[7] }
local removed = 0
for _, member in ipairs(redis.call('SPOP', KEYS[5], tonumber(ARGV[5]))) do
  local user_key, sid = split_member(member)
  -- A session owned by another node (re-registered elsewhere meanwhile) stays.
  if user_key and redis.call('HGET', KEYS[4], sid) == ARGV[1] and redis.call('ZSCORE', KEYS[3], member) then
    local record = redis.call('HGET', KEYS[1], sid)
    remove_session(keys, sid, user_of(user_key), user_key, record, 'node_lost', ARGV[2], ARGV[3])
    removed = removed + 1
  end
end
if removed > 0 then redis.call('SET', KEYS[8], '1', 'PX', ARGV[4]) end
return { removed, last_event_id, redis.call('SCARD', KEYS[5]) }
