--[[
page-1: the index part of one page of a shard's sessions for a snapshot, in index order (user key,
then session id): the whole shard, or the sessions of some users. The caller reads the records of
the page's members from their users' hashes next (a session removed in between is skipped); pages
are read one by one, so a snapshot of any size takes many short calls, and a session changed
between them may or may not be in it (the caller applies the presence events after its position on top).
KEYS[1] by-user ZSET
ARGV[1] max sessions (at most 1,000)   ARGV[2] 'all' or 'users'
'all':   ARGV[3] index member to read after ('' from the start)
'users': ARGV[3] session id to read after within the first user ('' from its start), ARGV[4…] user keys
Returns { index members, session count of the page's first user, session count of its last user,
number of users whose sessions the page ended in ('users': the ARGV position − 3 of the last
member's user; 'all': 0) }. Members of the page's other users are all in the page.
]]
local limit = tonumber(ARGV[1])
local members = {}
local last_user = 0
if ARGV[2] == 'all' then
  local from = ARGV[3] == '' and '-' or '(' .. ARGV[3]
  members = redis.call('ZRANGEBYLEX', KEYS[1], from, '+', 'LIMIT', 0, limit)
else
  for u = 4, #ARGV do
    local from = user_min(ARGV[u])
    if u == 4 and ARGV[3] ~= '' then from = '(' .. member_of(ARGV[u], ARGV[3]) end
    local found = redis.call('ZRANGEBYLEX', KEYS[1], from, user_max(ARGV[u]), 'LIMIT', 0, limit - #members)
    for i = 1, #found do members[#members + 1] = found[i] end
    if #found > 0 then last_user = u - 3 end
    if #members >= limit then break end
  end
end
if #members == 0 then return { {}, 0, 0, last_user } end
local keys = { by_user = KEYS[1] }
local first_key = split_member(members[1]) or ''
local last_key = split_member(members[#members]) or ''
return { members, user_count(keys, first_key), user_count(keys, last_key), last_user }
