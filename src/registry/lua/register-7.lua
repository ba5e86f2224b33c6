--[[
register-7: adds a session and announces it (user_online for the user's first, then session_connected).
Registering a known session id replaces its record (and owner) and announces nothing.
KEYS[1] sessions HASH   KEYS[2] seen HASH   KEYS[3] by-user ZSET   KEYS[4] owner HASH
KEYS[5] node SET (the owner's)   KEYS[6] events STREAM   KEYS[7] epoch HASH
ARGV[1] session id   ARGV[2] user id   ARGV[3] user key (see _common.lua)   ARGV[4] record JSON
ARGV[5] last_seen_at ms   ARGV[6] event time ms   ARGV[7] events to retain   ARGV[8] owner node id
Returns the id of the last event appended, or '' when a known record was replaced.
]]
ensure_epoch(KEYS[7])
local keys = { sessions = KEYS[1], seen = KEYS[2], by_user = KEYS[3], owner = KEYS[4], events = KEYS[6], epoch = KEYS[7] }
add_session(keys, KEYS[5], ARGV[8], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], false)
return last_event_id
