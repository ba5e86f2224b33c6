--[[
reap-n: removes a batch of sessions of a node whose lease lapsed, announcing each with reason
node_lost. The caller picks the batch from the dead node's set with a plain SRANDMEMBER (so it
can pass each session's user hash as a key); here each member is taken out of the set with SREM,
and only the script whose SREM removed it goes on: however many reapers race over the same node,
each session is removed and announced exactly once. The set's members name each session's user
(see _common.lua): no record is read but to announce it.
KEYS[1] by-user ZSET   KEYS[2] node SET (the dead node's)   KEYS[3] events STREAM   KEYS[4] epoch HASH
KEYS[5] reaped marker of the dead node
KEYS[5+i] the HASH of the user of ARGV[4+i] (any key of the shard for a member that is not an index member)
ARGV[1] dead node id   ARGV[2] event time ms   ARGV[3] events to retain   ARGV[4] marker TTL ms
ARGV[5…] members of the node set
Returns { sessions removed, id of the last event appended ('' if none), sessions left in the set }.
]]
ensure_epoch(KEYS[4])
local keys = { by_user = KEYS[1], events = KEYS[3], epoch = KEYS[4] }
local removed = 0
for i = 5, #ARGV do
  local member = ARGV[i]
  if redis.call('SREM', KEYS[2], member) == 1 then
    local user_key, sid = split_member(member)
    local user_hash = KEYS[i + 1]
    -- A session owned by another node (re-registered elsewhere meanwhile) stays.
    if user_key and redis.call('HGET', user_hash, 'o:' .. sid) == ARGV[1] and redis.call('ZSCORE', KEYS[1], member) then
      remove_session(keys, user_hash, sid, user_of(user_key), user_key, false, 'node_lost', ARGV[2], ARGV[3])
      removed = removed + 1
    end
  end
end
if removed > 0 then redis.call('SET', KEYS[5], '1', 'PX', ARGV[4]) end
return { removed, last_event_id, redis.call('SCARD', KEYS[2]) }
