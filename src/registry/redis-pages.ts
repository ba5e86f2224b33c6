import { checkPageLimit, type SessionsPage } from '../domain/presence.js';
import type { SessionRecord } from '../domain/session.js';
import { PushgateError } from '../errors.js';
import type { RedisClient, Reply } from '../redis/client.js';
import { callRedis } from '../redis/errors.js';
import { type RegistryKeys, type ShardKeys, splitMember, userKey as userKeyOf } from './redis-keys.js';
import { pipelineReplies, readRecord } from './redis-records.js';
import type { RegistryScripts } from './registry-scripts.js';

/** Users passed to one page script at most: a watch of many users pages through them in slices. */
const USERS_PER_SCRIPT = 1000;

/**
 * Snapshot pages of the Redis registry, in index order: shard by shard, then by user key and
 * session id (see page-1.lua); a user-filtered page reads only the given users of each shard, in
 * code unit order. Each step reads the index (one script), then the records of its members from
 * their users' hashes (one pipeline): the records' keys are known only once the index was read.
 * One page may take several steps (one per shard it crosses, and per USERS_PER_SCRIPT users).
 */
export async function readSessionsPage(
  deps: { readonly client: RedisClient; readonly scripts: RegistryScripts; readonly keys: RegistryKeys },
  userIds: readonly string[],
  pageToken: string | undefined,
  limit: number,
): Promise<SessionsPage> {
  const max = checkPageLimit(limit);
  const { keys, scripts, client } = deps;
  const byShard = userIds.length > 0 ? usersByShard(keys, userIds) : undefined;
  let at = pageToken === undefined ? { shard: 0, user: 0, after: '' } : parsePageToken(pageToken, keys.shards);
  const sessions: SessionRecord[] = [];
  const sessionCounts: number[] = [];
  while (at.shard < keys.shards && sessions.length < max) {
    const users = byShard?.[at.shard];
    if (users !== undefined && at.user >= users.length) {
      at = { shard: at.shard + 1, user: 0, after: '' };
      continue;
    }
    const wanted = max - sessions.length;
    const slice = users?.slice(at.user, at.user + USERS_PER_SCRIPT);
    const k = keys.shard(at.shard);
    const args = slice === undefined ? [wanted, 'all', at.after] : [wanted, 'users', at.after, ...slice.map(userKeyOf)];
    const [members, firstCount, lastCount, lastUser] = (await callRedis(() => scripts.run('pgPage', [k.byUser], args))) as [
      string[],
      number,
      number,
      number,
    ];
    const stored = await readMembers(client, k, members);
    collectPage(members, stored, firstCount, lastCount, sessions, sessionCounts);
    if (members.length === wanted) {
      // Full: the next page resumes after the last member read.
      const last = members.at(-1)!;
      at =
        slice === undefined
          ? { shard: at.shard, user: 0, after: last }
          : { shard: at.shard, user: at.user + lastUser - 1, after: splitMember(last)?.sessionId ?? '' };
    } else if (slice !== undefined && at.user + slice.length < users!.length) {
      at = { shard: at.shard, user: at.user + slice.length, after: '' };
    } else {
      at = { shard: at.shard + 1, user: 0, after: '' };
    }
  }
  return { sessions, sessionCounts, next: at.shard < keys.shards ? JSON.stringify([at.shard, at.user, at.after]) : undefined };
}

/**
 * Record and last_seen_at of each index member (record, seen, record, seen…), read with one HMGET
 * per user in one pipeline; nulls for a member that is not an index member (written by hand).
 */
async function readMembers(client: RedisClient, k: ShardKeys, members: readonly string[]): Promise<Reply[]> {
  if (members.length === 0) return [];
  const pipeline = client.pipeline();
  // Members are in index order, so one user's are consecutive: one HMGET per run.
  const runs: { from: number; to: number }[] = [];
  let fields: string[] = [];
  let user: string | undefined;
  const flush = (to: number): void => {
    if (user === undefined) return;
    pipeline.call('HMGET', k.user(user), ...fields);
    runs.push({ from: to - fields.length / 2, to });
    fields = [];
    user = undefined;
  };
  members.forEach((member, i) => {
    const parts = splitMember(member);
    if (parts?.userKey !== user) flush(i);
    if (parts === undefined) return;
    user = parts.userKey;
    fields.push(`r:${parts.sessionId}`, `s:${parts.sessionId}`);
  });
  flush(members.length);
  const replies = await callRedis(async () => pipelineReplies(await pipeline.exec()));
  const stored: Reply[] = new Array<Reply>(members.length * 2).fill(null);
  runs.forEach(({ from }, r) => {
    const values = replies[r] as Reply[];
    for (let j = 0; j < values.length; j++) stored[from * 2 + j] = values[j]!;
  });
  return stored;
}

/** Per shard, the distinct given users that live there, in code unit order (the order pages take them in). */
function usersByShard(keys: RegistryKeys, userIds: readonly string[]): string[][] {
  const byShard: string[][] = Array.from({ length: keys.shards }, () => []);
  for (const userId of new Set(userIds)) byShard[keys.shardOf(userId)]!.push(userId);
  for (const users of byShard) users.sort();
  return byShard;
}

/**
 * Adds one step's page to the result. Each record gets its user's total: the script counted the
 * first and last users of its page (their sessions may run over into other pages); every user in
 * between has all its sessions in this page, so counting them here is exact.
 */
function collectPage(
  members: readonly string[],
  stored: readonly Reply[],
  firstCount: number,
  lastCount: number,
  sessions: SessionRecord[],
  sessionCounts: number[],
): void {
  if (members.length === 0) return;
  const users = members.map((member) => splitMember(member)?.userKey ?? '');
  const counts = new Map<string, number>();
  for (const user of users) counts.set(user, (counts.get(user) ?? 0) + 1);
  counts.set(users[0]!, firstCount);
  counts.set(users.at(-1)!, lastCount);
  members.forEach((_, i) => {
    const record = readRecord(stored[2 * i]!, stored[2 * i + 1]!);
    if (record === undefined) return;
    sessions.push(record);
    sessionCounts.push(counts.get(users[i]!)!);
  });
}

interface PagePosition {
  readonly shard: number;
  /** 'users' pages: index of the user to resume with in the shard's sorted list. */
  readonly user: number;
  /** The index member (whole-shard pages) or session id of that user ('users' pages) to read after; '' from the start. */
  readonly after: string;
}

function parsePageToken(token: string, shards: number): PagePosition {
  try {
    const parsed: unknown = JSON.parse(token);
    if (Array.isArray(parsed) && parsed.length === 3) {
      const [shard, user, after] = parsed as unknown[];
      if (
        Number.isSafeInteger(shard) &&
        Number.isSafeInteger(user) &&
        typeof after === 'string' &&
        (shard as number) >= 0 &&
        (shard as number) < shards &&
        (user as number) >= 0
      )
        return { shard: shard as number, user: user as number, after };
    }
  } catch {
    // refused below
  }
  throw new PushgateError('invalid_argument', `"${token.slice(0, 64)}" is not a sessions page token of this deployment`);
}
