--[[
unregister-5: removes a session and announces it (session_disconnected, then user_offline when it
was the user's last). Unknown sessions, or a session id under another user, change nothing.
KEYS[1] the user's HASH   KEYS[2] by-user ZSET   KEYS[3] node SET (the caller's)
KEYS[4] events STREAM   KEYS[5] epoch HASH
ARGV[1] session id   ARGV[2] user id   ARGV[3] user key   ARGV[4] reason   ARGV[5] event time ms
ARGV[6] events to retain
Returns { record JSON, last_seen_at, id of the last event appended } of the removed session, or nil
when it was not registered.
]]
local member = member_of(ARGV[3], ARGV[1])
-- The index says whether it is registered; removing from it answers that in the same command.
if redis.call('ZREM', KEYS[2], member) == 0 then return nil end
redis.call('SREM', KEYS[3], member)
local record, last_seen = take_fields(KEYS[1], ARGV[1])
-- A member without a record was left by hand; there is nothing a reader could decode to announce.
if not record then return nil end
local keys = { by_user = KEYS[2], events = KEYS[4], epoch = KEYS[5] }
announce_removal(keys, ARGV[2], ARGV[3], record, last_seen, ARGV[4], ARGV[5], ARGV[6])
return { record, last_seen, last_event_id }
