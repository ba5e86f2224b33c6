--[[
Shared helpers of the registry's scripts, prepended to each when it is loaded (after src/redis/lua/prelude.lua).
Presence events are stream entries with fields:
  k kind, u user id, s session record JSON, l last_seen_at ms, r reason, c session count after,
  t time ms, n sequence number (1, 2, 3… per shard: a reader that sees a number skipped knows the
  events in between were trimmed before it read them)
The epoch key is a HASH: `id` the stream's identity, `seq` the last sequence number.
Every script that changes sessions takes a `keys` table of the shard's keys: sessions, seen,
by_user, owner, events, epoch.

No script decodes JSON: session records are opaque strings here (a record Lua could not decode
must never wedge a node). What a script needs to know of a session comes from plain strings:
- the `by-user` ZSET holds every session of the shard as member `<user key>\0\0<session id>`,
  score 0, where the user key is the user id with each NUL written NUL \1 (src/registry/redis-keys.ts),
  so one user's sessions are the lexicographic range [<user key>\0\0, <user key>\0\1);
- node SETs hold the same members, so a reaper knows each session's user without reading its record;
- the `owner` HASH maps session id → node id.
]]

-- Values per HMGET: Lua's unpack fails near 8,000 values, so reads go in chunks below that.
local CHUNK = 1000

-- The shard's stream identity: created on first use, new after Redis lost its data.
local function ensure_epoch(epoch_key)
  local epoch = redis.call('HGET', epoch_key, 'id')
  if not epoch then
    local t = redis.call('TIME')
    epoch = t[1] .. string.format('%06d', tonumber(t[2]))
    redis.call('HSET', epoch_key, 'id', epoch, 'seq', 0)
  end
  return epoch
end

-- Id of the newest event this script appended; scripts return it so the calling node knows where
-- its own changes sit in the feed.
local last_event_id = ''

-- Appends one presence event, keeping exactly `retention` events. keys: { events, epoch }.
local function emit(keys, retention, kind, user_id, record, last_seen, reason, count, at_ms)
  local seq = redis.call('HINCRBY', keys.epoch, 'seq', 1)
  last_event_id = redis.call('XADD', keys.events, 'MAXLEN', retention, '*',
    'k', kind, 'u', user_id, 's', record, 'l', last_seen, 'r', reason, 'c', count, 't', at_ms, 'n', seq)
  return last_event_id
end

-- HMGET of any number of fields, CHUNK at a time; one reply list in the order of `fields`.
local function hmget_all(key, fields)
  local found = {}
  for from = 1, #fields, CHUNK do
    local part = redis.call('HMGET', key, unpack(fields, from, math.min(from + CHUNK - 1, #fields)))
    for i = 1, #part do found[#found + 1] = part[i] end
  end
  return found
end

-- The index member of a session, and the bounds of its user's range (for ZRANGEBYLEX / ZLEXCOUNT).
local function member_of(user_key, sid) return user_key .. '\0\0' .. sid end
local function user_min(user_key) return '[' .. user_key .. '\0\0' end
local function user_max(user_key) return '(' .. user_key .. '\0\1' end

-- The user key and session id of an index member (plain find: no pattern, no decoding); nil for
-- a string that is not one (written by hand).
local function split_member(member)
  local at = string.find(member, '\0\0', 1, true)
  if not at then return nil, nil end
  return string.sub(member, 1, at - 1), string.sub(member, at + 2)
end

-- The user id a user key stands for (NUL \1 back to NUL).
local function user_of(user_key)
  return (string.gsub(user_key, '%z\1', '\0'))
end

local function user_count(keys, user_key)
  return redis.call('ZLEXCOUNT', keys.by_user, user_min(user_key), user_max(user_key))
end

-- Removes a session from the shard keys (not the node set) and announces it. The caller checked it
-- is registered; `record` is its stored record (announced as is), false if it has none.
local function remove_session(keys, sid, user_id, user_key, record, reason, at_ms, retention)
  local last_seen = redis.call('HGET', keys.seen, sid) or ''
  redis.call('HDEL', keys.sessions, sid)
  redis.call('HDEL', keys.seen, sid)
  redis.call('HDEL', keys.owner, sid)
  redis.call('ZREM', keys.by_user, member_of(user_key, sid))
  -- A member without a record was left by hand; there is nothing a reader could decode to announce.
  if not record then return last_seen end
  local count = user_count(keys, user_key)
  emit(keys, retention, 'session_disconnected', user_id, record, last_seen, reason, count, at_ms)
  if count == 0 then
    emit(keys, retention, 'user_offline', user_id, record, last_seen, reason, 0, at_ms)
  end
  return last_seen
end

-- Adds a session to the shard keys and its node's set; announces it unless `silent`. False when
-- it was already registered (its record is replaced, its owner updated).
local function add_session(keys, node_key, node_id, sid, user_id, user_key, record, last_seen, at_ms, retention, silent)
  local member = member_of(user_key, sid)
  redis.call('SADD', node_key, member)
  redis.call('HSET', keys.owner, sid, node_id)
  local added = redis.call('HSET', keys.sessions, sid, record) == 1
  redis.call('HSET', keys.seen, sid, last_seen)
  if not added then return false end
  redis.call('ZADD', keys.by_user, 0, member)
  if silent then return true end
  local count = user_count(keys, user_key)
  if count == 1 then
    emit(keys, retention, 'user_online', user_id, record, last_seen, '', 1, at_ms)
  end
  emit(keys, retention, 'session_connected', user_id, record, last_seen, '', count, at_ms)
  return true
end

-- The newest position of a shard's feed: epoch, last event id ('0-0' if none), its sequence number.
local function feed_position(events_key, epoch_key)
  local epoch = ensure_epoch(epoch_key)
  local last = redis.call('XREVRANGE', events_key, '+', '-', 'COUNT', 1)
  return epoch, last[1] and last[1][1] or '0-0', tonumber(redis.call('HGET', epoch_key, 'seq'))
end
