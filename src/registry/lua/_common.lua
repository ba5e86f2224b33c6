--[[
Shared helpers of the registry's scripts, prepended to each when it is loaded (after src/redis/lua/prelude.lua).
Presence events are stream entries with fields:
  k kind, u user id, s session record JSON, l last_seen_at ms, r reason, c session count after,
  t time ms, n sequence number (1, 2, 3… per shard: a reader that sees a number skipped knows the
  events in between were trimmed before it read them)
The epoch key is a HASH: `id` the stream's identity, `seq` the last sequence number.
Every script takes a `keys` table of the shard's keys: sessions, seen, users, events, epoch.
]]

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

-- A user's session ids: the `users` hash holds them as a JSON array per user id.
local function user_sessions(keys, user_id)
  local json = redis.call('HGET', keys.users, user_id)
  if not json then return {} end
  return cjson.decode(json)
end

local function set_user_sessions(keys, user_id, sids)
  if #sids == 0 then
    redis.call('HDEL', keys.users, user_id)
  else
    redis.call('HSET', keys.users, user_id, cjson.encode(sids))
  end
end

-- Removes a session from the shard keys (not the node set) and announces it. The caller checked
-- it is registered; `record` is its stored JSON.
local function remove_session(keys, sid, record, reason, at_ms, retention)
  local last_seen = redis.call('HGET', keys.seen, sid) or ''
  local user_id = cjson.decode(record).userId
  redis.call('HDEL', keys.sessions, sid)
  redis.call('HDEL', keys.seen, sid)
  local kept = {}
  for _, other in ipairs(user_sessions(keys, user_id)) do
    if other ~= sid then kept[#kept + 1] = other end
  end
  set_user_sessions(keys, user_id, kept)
  emit(keys, retention, 'session_disconnected', user_id, record, last_seen, reason, #kept, at_ms)
  if #kept == 0 then
    emit(keys, retention, 'user_offline', user_id, record, last_seen, reason, 0, at_ms)
  end
  return last_seen
end

-- Adds a session to the shard keys and its node's set; announces it unless `silent`. False when
-- it was already registered (its record is replaced).
local function add_session(keys, node_key, sid, user_id, record, last_seen, at_ms, retention, silent)
  redis.call('SADD', node_key, sid)
  local added = redis.call('HSET', keys.sessions, sid, record) == 1
  redis.call('HSET', keys.seen, sid, last_seen)
  if not added then return false end
  local sids = user_sessions(keys, user_id)
  sids[#sids + 1] = sid
  set_user_sessions(keys, user_id, sids)
  if silent then return true end
  if #sids == 1 then
    emit(keys, retention, 'user_online', user_id, record, last_seen, '', 1, at_ms)
  end
  emit(keys, retention, 'session_connected', user_id, record, last_seen, '', #sids, at_ms)
  return true
end

-- The newest position of a shard's feed: epoch, last event id ('0-0' if none), its sequence number.
local function feed_position(events_key, epoch_key)
  local epoch = ensure_epoch(epoch_key)
  local last = redis.call('XREVRANGE', events_key, '+', '-', 'COUNT', 1)
  return epoch, last[1] and last[1][1] or '0-0', tonumber(redis.call('HGET', epoch_key, 'seq'))
end
