--[[
Shared helpers of the inbox's scripts, prepended to each when it is loaded (after
src/redis/lua/prelude.lua). Every script works on one user's inbox (src/inbox/inbox-keys.ts):
  KEYS[1] HASH  the messages: m:<id> record JSON (opaque here), n:<id> attempts, a:<id> acked
                types, t:<id> client-type filter, q:<id> required types (each_client_type only);
                `seq` the last seq given, `x` the latest expiry stored
  KEYS[2] ZSET  message ids by seq
  KEYS[3] ZSET  message ids by expiresAtMs
  KEYS[4] ZSET  the shard's sweep index: `<user key>\0\0<id>` by expiresAtMs (scripts that remove)
Type lists are "\n"-wrapped ("\napp\nweb\n", "\n" for none): a type is in one when "\n<type>\n" is.
A message is live while its expiry is after `now` (the caller's clock, passed in ARGV); an expired
one stays until a sweep reports it (expire-4), but no read returns it and the cap does not count it.
A message as scripts return it: { record JSON, acked types, attempts, seq }.
]]

local function user_keys()
  return { hash = KEYS[1], order = KEYS[2], expiry = KEYS[3], due = KEYS[4] }
end

-- Whether a "\n"-wrapped list (false or nil: no list) holds the type; a plain find, no pattern.
local function has_type(list, t)
  return list and string.find(list, '\n' .. t .. '\n', 1, true) ~= nil
end

-- How many types a "\n"-wrapped list holds.
local function type_count(list)
  local _, newlines = string.gsub(list, '\n', '')
  return newlines - 1
end

local function is_live(k, id, now)
  local expires = redis.call('ZSCORE', k.expiry, id)
  return expires and tonumber(expires) > now
end

-- The message as scripts return it, or nil when it is not stored.
local function read_message(k, id)
  local f = redis.call('HMGET', k.hash, 'm:' .. id, 'a:' .. id, 'n:' .. id)
  if not f[1] then return nil end
  return { f[1], f[2] or '', f[3] or '0', redis.call('ZSCORE', k.order, id) }
end

-- Takes a message out of every key (its index entries even when its fields are gone); returns it,
-- or nil when it was not stored.
local function take(k, user_key, id)
  local message = read_message(k, id)
  if message then redis.call('HDEL', k.hash, 'm:' .. id, 'n:' .. id, 'a:' .. id, 't:' .. id, 'q:' .. id) end
  redis.call('ZREM', k.order, id)
  redis.call('ZREM', k.expiry, id)
  redis.call('ZREM', k.due, user_key .. '\0\0' .. id)
  return message
end

-- Calls visit(id) for each message id with seq > after_seq, in seq order, until it returns false.
-- Reads in batches by score, so removing visited messages does not skip any.
local function each_after(k, after_seq, visit)
  local after = '(' .. after_seq
  while true do
    local batch = redis.call('ZRANGEBYSCORE', k.order, after, '+inf', 'WITHSCORES', 'LIMIT', 0, 100)
    if #batch == 0 then return end
    for i = 1, #batch, 2 do
      after = '(' .. batch[i + 1]
      if visit(batch[i]) == false then return end
    end
  end
end
