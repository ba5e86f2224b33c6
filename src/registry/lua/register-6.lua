--[[
register-6: adds a session and announces it (user_online for the user's first, then session_connected).
Registering a known session id replaces its record and announces nothing.
KEYS[1] sessions HASH   KEYS[2] seen HASH   KEYS[3] users HASH   KEYS[4] node SET (the owner's)
KEYS[5] events STREAM   KEYS[6] epoch HASH
ARGV[1] session id   ARGV[2] user id   ARGV[3] record JSON   ARGV[4] last_seen_at ms
ARGV[5] event time ms   ARGV[6] events to retain
Returns the id of the last event appended, or '' when a known record was replaced.
]]
ensure_epoch(KEYS[6])
local keys = { sessions = KEYS[1], seen = KEYS[2], users = KEYS[3], events = KEYS[5], epoch = KEYS[6] }
add_session(keys, KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], false)
return last_event_id
