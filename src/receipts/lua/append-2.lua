--[[
append-2: appends one receipt event, keeping at most `retention` events and none older than
`retention ms`. The first event of a stream (none before, or Redis lost its data) gives the
stream its identity.
KEYS[1] events STREAM   KEYS[2] epoch HASH
ARGV[1] retention (events)   ARGV[2] retention ms
ARGV[3] kind   ARGV[4] messageId   ARGV[5] userId   ARGV[6] sessionId   ARGV[7] clientType
ARGV[8] atMs   ARGV[9] replay ('1' or '0')
Returns { epoch, the entry's id, its number }.
]]
local n = redis.call('HINCRBY', KEYS[2], 'seq', 1)
local epoch = ensure_epoch(KEYS[2])
-- Exact MAXLEN: `~` trims only whole stream nodes (100 entries), so a small retention would not hold.
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*',
  'kind', ARGV[3], 'messageId', ARGV[4], 'userId', ARGV[5], 'sessionId', ARGV[6],
  'clientType', ARGV[7], 'atMs', ARGV[8], 'replay', ARGV[9], 'n', n)
trim_by_age(KEYS[1], ARGV[2])
return { epoch, id, n }
