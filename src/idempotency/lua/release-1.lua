--[[
release-1: gives a key up (the push failed before it could be remembered), if the caller's claim
still holds it, so the next claim is `first` at once instead of after the lease.
KEYS[1] the key's STRING (`running:<token>` while claimed, `done:<result>` once complete)
ARGV[1] the claim's value (`running:<token>`)
Returns 1 if given up, 0 if the claim no longer held the key (nothing changed).
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
