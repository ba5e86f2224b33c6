--[[
Shared helpers of the registry's scripts, prepended to each when it is loaded (after src/redis/lua/prelude.lua).
Presence events are stream entries with fields:
  k kind, u user id, s session record JSON, l last_seen_at ms, r reason, c session count after,
  t time ms, n sequence number (1, 2, 3… per shard: a reader that sees a number skipped knows the
  events in between were trimmed before it read them)
The epoch key is a HASH: `id` the stream's identity, `seq` the last sequence number (ensure_epoch,
feed_position and oldest_position come from the prelude).
Every script that changes sessions takes a `keys` table of the shard's keys: by_user, events, epoch;
and the HASH of each user it changes (passed in KEYS like every other key).

A user's HASH holds three fields per session: `r:<sid>` the record JSON, `s:<sid>` last_seen_at ms,
`o:<sid>` the owning node id. Every registration writes all three and every removal deletes all
three, so `s:<sid>` existing says the session is registered (touch relies on it).

No script decodes JSON: session records are opaque strings here (a record Lua could not decode
must never wedge a node). What a script needs to know of a session comes from plain strings:
- the `by-user` ZSET holds every session of the shard as member `<user key>\0\0<session id>`,
  score 0, where the user key is the user id with each NUL written NUL \1 (src/registry/redis-keys.ts),
  so one user's sessions are the lexicographic range [<user key>\0\0, <user key>\0\1); a session
  is registered exactly when its member is there;
- node SETs hold the same members, so a reaper knows each session's user without reading its record;
- the `o:<sid>` field names the node holding the session.
]]

-- Id of the newest event this script appended; scripts return it so the calling node knows where
-- its own changes sit in the feed.
local last_event_id = ''

-- Appends one presence event, keeping exactly `retention` events. keys: { events, epoch }. The
-- first event of a stream (none before, or Redis lost its data) gives the stream its identity, so
-- scripts that only append events need not check it first.
local function emit(keys, retention, kind, user_id, record, last_seen, reason, count, at_ms)
  local seq = redis.call('HINCRBY', keys.epoch, 'seq', 1)
  if seq == 1 then ensure_epoch(keys.epoch) end
  last_event_id = redis.call('XADD', keys.events, 'MAXLEN', retention, '*',
    'k', kind, 'u', user_id, 's', record, 'l', last_seen, 'r', reason, 'c', count, 't', at_ms, 'n', seq)
  return last_event_id
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

-- Takes a session's fields out of its user's hash: its record (false if it has none) and last_seen_at ('' if none).
local function take_fields(user_hash, sid)
  local stored = redis.call('HMGET', user_hash, 'r:' .. sid, 's:' .. sid)
  redis.call('HDEL', user_hash, 'r:' .. sid, 's:' .. sid, 'o:' .. sid)
  return stored[1], stored[2] or ''
end

-- Announces a removed session: session_disconnected, then user_offline when it was the user's last.
local function announce_removal(keys, user_id, user_key, record, last_seen, reason, at_ms, retention)
  local count = user_count(keys, user_key)
  emit(keys, retention, 'session_disconnected', user_id, record, last_seen, reason, count, at_ms)
  if count == 0 then
    emit(keys, retention, 'user_offline', user_id, record, last_seen, reason, 0, at_ms)
  end
end

-- Removes a session from its user's hash and the index (not the node set) and announces it with
-- its stored record, or `fallback` when it has none. The caller checked it is registered.
local function remove_session(keys, user_hash, sid, user_id, user_key, fallback, reason, at_ms, retention)
  redis.call('ZREM', keys.by_user, member_of(user_key, sid))
  local record, last_seen = take_fields(user_hash, sid)
  record = record or fallback
  -- A member without a record was left by hand; there is nothing a reader could decode to announce.
  if record then announce_removal(keys, user_id, user_key, record, last_seen, reason, at_ms, retention) end
end

-- Adds a session to its user's hash, the index and its node's set; announces it unless `silent`.
-- False when it was already registered (its record is replaced, its owner updated).
local function add_session(keys, user_hash, node_key, node_id, sid, user_id, user_key, record, last_seen, at_ms, retention, silent)
  local member = member_of(user_key, sid)
  redis.call('SADD', node_key, member)
  redis.call('HSET', user_hash, 'r:' .. sid, record, 's:' .. sid, last_seen, 'o:' .. sid, node_id)
  if redis.call('ZADD', keys.by_user, 0, member) == 0 then return false end
  if silent then return true end
  local count = user_count(keys, user_key)
  if count == 1 then
    emit(keys, retention, 'user_online', user_id, record, last_seen, '', 1, at_ms)
  end
  emit(keys, retention, 'session_connected', user_id, record, last_seen, '', count, at_ms)
  return true
end
