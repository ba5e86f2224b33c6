--[[
sync-n: makes the registry agree with what a node really holds, after Redis was unreachable or
lost its data, or after the node's sessions were reaped while it was alive but silent.
- Live sessions missing from the registry are put back. They are announced (user_online,
  session_connected) only if their departure was announced, i.e. a reaper removed them: the node's
  reaped marker is set. Read here, not by the caller: a reap landing between the caller's read and
  this script left a node's sessions announced gone and silently back. After Redis lost its data
  nobody was told they left, so they return silently.
- Departed sessions (closed while Redis was unreachable, or left over in the node's set) are
  removed and announced with their reason. One that is already gone was removed by a command
  that ran after all (its caller had given up on it) or by a reaper, which announced it, unless
  the stream's epoch changed since the node saw it: then Redis lost its data and nobody was told.
The caller batches large nodes; the last batch clears the reaped marker.
KEYS[1] by-user ZSET   KEYS[2] node SET (this node's)   KEYS[3] events STREAM   KEYS[4] epoch HASH
KEYS[5] this node's reaped marker
KEYS[5+i] the HASH of the user of the i-th session below (live ones first, then departed ones)
ARGV[1] node id   ARGV[2] event time ms   ARGV[3] events to retain   ARGV[4] '1' for the last batch, else '0'
ARGV[5] number of live sessions L
then L × (session id, user id, user key, record JSON, last_seen_at ms)
then departed × (session id, user id, user key, record JSON, reason, epoch the node knew when it closed)
Returns { sessions restored, departures announced, id of the last event appended ('' if none) }.
]]
local epoch = ensure_epoch(KEYS[4])
local announce = redis.call('EXISTS', KEYS[5]) == 1
local keys = { by_user = KEYS[1], events = KEYS[3], epoch = KEYS[4] }
local live = tonumber(ARGV[5])
local restored, departed = 0, 0
local at, retention = ARGV[2], ARGV[3]
for i = 0, live - 1 do
  local a = 6 + i * 5
  if add_session(keys, KEYS[6 + i], KEYS[2], ARGV[1], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], at, retention, not announce) then
    restored = restored + 1
  end
end
local first_departed = 6 + live * 5
for j = 0, (#ARGV - first_departed + 1) / 6 - 1 do
  local a = first_departed + j * 6
  local user_hash = KEYS[6 + live + j]
  local sid, user_id, user_key, record, reason, known_epoch = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local member = member_of(user_key, sid)
  redis.call('SREM', KEYS[2], member)
  local registered = redis.call('ZSCORE', KEYS[1], member)
  if registered and redis.call('HGET', user_hash, 'o:' .. sid) == ARGV[1] then
    remove_session(keys, user_hash, sid, user_id, user_key, record, reason, at, retention)
    departed = departed + 1
  elseif not registered and known_epoch ~= epoch then
    local count = user_count(keys, user_key)
    emit(keys, retention, 'session_disconnected', user_id, record, '', reason, count, at)
    if count == 0 then emit(keys, retention, 'user_offline', user_id, record, '', reason, 0, at) end
    departed = departed + 1
  end
end
if ARGV[4] == '1' and announce then redis.call('DEL', KEYS[5]) end
return { restored, departed, last_event_id }
