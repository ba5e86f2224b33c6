--[[
unregister-6: removes a session and announces it (session_disconnected, then user_offline when it
was the user's last). Unknown sessions, or a session id under another user, change nothing.
KEYS[1] sessions HASH   KEYS[2] seen HASH   KEYS[3] users HASH   KEYS[4] node SET (the caller's)
KEYS[5] events STREAM   KEYS[6] epoch HASH
ARGV[1] session id   ARGV[2] user id   ARGV[3] reason   ARGV[4] event time ms   ARGV[5] events to retain
Returns { record JSON, last_seen_at, id of the last event appended } of the removed session, or nil
when it was not registered.
]]
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record or cjson.decode(record).userId ~= ARGV[2] then return nil end
ensure_epoch(KEYS[6])
redis.call('SREM', KEYS[4], ARGV[1])
local keys = { sessions = KEYS[1], seen = KEYS[2], users = KEYS[3], events = KEYS[5], epoch = KEYS[6] }
local last_seen = remove_session(keys, ARGV[1], record, ARGV[3], ARGV[4], ARGV[5])
return { record, last_seen, last_event_id }
