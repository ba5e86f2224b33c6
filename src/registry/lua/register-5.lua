--[[
register-5: adds a session and announces it (user_online for the user's first, then session_connected).
Registering a known session id replaces its record (and owner) and announces nothing.
KEYS[1] the user's HASH   KEYS[2] by-user ZSET   KEYS[3] node SET (the owner's)
KEYS[4] events STREAM   KEYS[5] epoch HASH
ARGV[1] session id   ARGV[2] user id   ARGV[3] user key (see _common.lua)   ARGV[4] record JSON
ARGV[5] last_seen_at ms   ARGV[6] event time ms   ARGV[7] events to retain   ARGV[8] owner node id
Returns the id of the last event appended, or '' when a known record was replaced.
]]
local keys = { by_user = KEYS[2], events = KEYS[4], epoch = KEYS[5] }
add_session(keys, KEYS[1], KEYS[3], ARGV[8], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], false)
return last_event_id
