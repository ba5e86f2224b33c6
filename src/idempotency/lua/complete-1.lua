--[[
complete-1: keeps a push's result for the window, if the caller's claim still holds the key (a
claim whose lease passed has expired, and the key may hold another claim's value by now).
KEYS[1] the key's STRING (`running:<token>` while claimed, `done:<result>` once complete)
ARGV[1] the claim's value (`running:<token>`)   ARGV[2] the value to keep (`done…`)   ARGV[3] window ms
Returns 1 if kept, 0 if the claim no longer held the key (nothing changed).
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
