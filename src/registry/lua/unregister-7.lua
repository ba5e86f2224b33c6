--[[
unregister-7: removes a session and announces it (session_disconnected, then user_offline when it
was the user's last). Unknown sessions, or a session id under another user, change nothing.
KEYS[1] sessions HASH   KEYS[2] seen HASH   KEYS[3] by-user ZSET   KEYS[4] owner HASH
KEYS[5] node SET (the caller's)   KEYS[6] events STREAM   KEYS[7] epoch HASH
ARGV[1] session id   ARGV[2] user id   ARGV[3] user key   ARGV[4] reason   ARGV[5] event time ms
ARGV[6] events to retain
Returns { record JSON, last_seen_at, id of the last event appended } of the removed session, or nil
when it was not registered.
]]
local member = member_of(ARGV[3], ARGV[1])
if not redis.call('ZSCORE', KEYS[3], member) then return nil end
local record = redis.call('HGET', KEYS[1], ARGV[1])
ensure_epoch(KEYS[7])
redis.call('SREM', KEYS[5], member)
local keys = { sessions = KEYS[1], seen = KEYS[2], by_user = KEYS[3], owner = KEYS[4], events = KEYS[6], epoch = KEYS[7] }
local last_seen = remove_session(keys, ARGV[1], ARGV[2], ARGV[3], record, ARGV[4], ARGV[5], ARGV[6])
if not record then return nil end
return { record, last_seen, last_event_id }
