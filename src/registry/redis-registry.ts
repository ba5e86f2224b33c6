import type { Logger } from 'pino';
import { checkPageLimit, type PresenceEvent, type PresenceListener, type SessionsPage } from '../domain/presence.js';
import { matchesFilter, type SessionFilter, type SessionRecord } from '../domain/session.js';
import type { SessionRegistry } from '../domain/session-registry.js';
import { PushgateError } from '../errors.js';
import type { RedisClient, Reply } from '../redis/client.js';
import { callRedis } from '../redis/errors.js';
import { LastSeenBatcher } from './last-seen-batcher.js';
import { encodeCursor } from './redis-cursor.js';
import { RedisFeedReader } from './redis-feed-reader.js';
import { type RegistryKeys, type ShardKeys, splitMember, userKey } from './redis-keys.js';
import { byConnection, parseRecords, readRecord, recordJson, recordsByUser } from './redis-records.js';
import { RedisRecovery, type RegistryRecovery } from './registry-recovery.js';
import { defineRegistryScripts, type RegistryScripts } from './registry-scripts.js';

export interface RedisRegistryOptions {
  /** Client for commands: no offline queue and a command timeout, so calls fail fast. The registry defines its scripts on it. */
  readonly client: RedisClient;
  /** Opens a connection for one shard's blocking stream reads (it must not share the command client). */
  readonly openReader: () => RedisClient;
  readonly keys: RegistryKeys;
  readonly nodeId: string;
  /** Events kept per shard. */
  readonly retention: number;
  readonly retentionMs: number;
  /** last_seen_at refreshes are written in one batch per shard this often. */
  readonly touchFlushMs: number;
  readonly log: Logger;
}

/**
 * The cluster-mode registry: sessions and presence events in Redis, shared by every node. Each
 * change is one Lua script (atomic, one round trip) that also appends its presence events to the
 * shard's stream; the feed reader follows the streams (see RedisFeedReader).
 *
 * Beside the SessionRegistry contract it offers `recovery` to the node's membership
 * (src/cluster/membership.ts): re-sync after Redis trouble, reaping, trimming.
 */
export class RedisSessionRegistry implements SessionRegistry {
  private readonly scripts: RegistryScripts;
  private readonly feed: RedisFeedReader;
  private readonly lastSeen: LastSeenBatcher;
  private readonly nodeRecovery: RedisRecovery;

  constructor(private readonly options: RedisRegistryOptions) {
    const { client, openReader, keys, nodeId, retention, retentionMs, touchFlushMs, log } = options;
    this.scripts = defineRegistryScripts(client);
    this.feed = new RedisFeedReader({ client, scripts: this.scripts, openReader, keys, log });
    this.lastSeen = new LastSeenBatcher({ scripts: this.scripts, keys, flushMs: touchFlushMs, log });
    this.nodeRecovery = new RedisRecovery({ client, scripts: this.scripts, feed: this.feed, keys, nodeId, retention, retentionMs, log });
  }

  /** What membership needs to keep Redis in agreement with this node. */
  get recovery(): RegistryRecovery {
    return this.nodeRecovery;
  }

  /** Reads each shard's feed position and starts following the shards' streams. */
  start(): Promise<void> {
    return this.feed.start();
  }

  async register(session: SessionRecord): Promise<void> {
    const keys = this.keysOf(session.userId);
    this.nodeRecovery.holding(session);
    const lastEvent = await callRedis(() =>
      this.scripts.run(
        'pgRegister',
        [keys.sessions, keys.seen, keys.byUser, keys.owner, keys.node(session.nodeId), keys.events, keys.epoch],
        [
          session.sessionId,
          session.userId,
          userKey(session.userId),
          recordJson(session),
          session.lastSeenAtMs,
          Date.now(),
          this.options.retention,
          session.nodeId,
        ],
      ),
    ).catch((err: unknown) => {
      this.nodeRecovery.writeFailed();
      throw err;
    });
    this.wrote(session.userId, lastEvent as string);
  }

  async unregister(userId: string, sessionId: string, reason: string): Promise<SessionRecord | undefined> {
    const keys = this.keysOf(userId);
    const mine = this.nodeRecovery.releasing(sessionId);
    this.lastSeen.forget(sessionId);
    let reply: Reply;
    try {
      reply = await callRedis(() =>
        this.scripts.run(
          'pgUnregister',
          [keys.sessions, keys.seen, keys.byUser, keys.owner, keys.node(this.options.nodeId), keys.events, keys.epoch],
          [sessionId, userId, userKey(userId), reason, Date.now(), this.options.retention],
        ),
      );
    } catch (err) {
      if (mine !== undefined) this.nodeRecovery.departedUnannounced(mine, reason);
      throw err;
    }
    if (!Array.isArray(reply)) return undefined;
    this.wrote(userId, reply[2] as string);
    return readRecord(reply[0]!, reply[1]!);
  }

  async touch(userId: string, sessionId: string, atMs: number): Promise<void> {
    this.lastSeen.touch(userId, sessionId, atMs);
  }

  async lookup(userId: string, filter?: SessionFilter): Promise<SessionRecord[]> {
    const keys = this.keysOf(userId);
    const withTouches = this.lastSeen.overlay();
    const reply = (await callRedis(() =>
      this.scripts.run('pgLookup', [keys.byUser, keys.sessions, keys.seen], [userKey(userId)]),
    )) as Reply[][];
    const found = parseRecords(reply[0]!, reply[1]!).filter((session) => matchesFilter(session, filter));
    return withTouches(found).sort(byConnection);
  }

  /** One script per shard holding any of the users (lookup-many-3.lua), every shard at once, however many users. */
  async lookupMany(userIds: readonly string[], filter?: SessionFilter): Promise<Map<string, SessionRecord[]>> {
    const { keys } = this.options;
    const found = new Map<string, SessionRecord[]>(userIds.map((userId) => [userId, []]));
    const withTouches = this.lastSeen.overlay();
    const byShard = new Map<number, string[]>();
    for (const userId of found.keys()) {
      const shard = keys.shardOf(userId);
      if (!byShard.get(shard)?.push(userId)) byShard.set(shard, [userId]);
    }
    const replies = [...byShard].map(async ([shard, users]) => {
      const k = keys.shard(shard);
      const reply = (await callRedis(() =>
        this.scripts.run('pgLookupMany', [k.byUser, k.sessions, k.seen], users.map(userKey)),
      )) as Reply[][];
      for (const [userId, sessions] of recordsByUser(users, reply)) {
        found.set(userId, withTouches(sessions.filter((s) => matchesFilter(s, filter))).sort(byConnection));
      }
    });
    await Promise.all(replies);
    return found;
  }

  async position(): Promise<string> {
    const { shards } = this.options.keys;
    return encodeCursor(await Promise.all(Array.from({ length: shards }, (_, shard) => this.feed.position(shard))));
  }

  /**
   * Pages in index order: shard by shard, then by user key and session id (see page-3.lua); a
   * user-filtered page reads only the given users of each shard, in code unit order. One page may
   * take several short scripts (one per shard it crosses, and per USERS_PER_SCRIPT users).
   */
  async sessionsPage(userIds: readonly string[], pageToken: string | undefined, limit: number): Promise<SessionsPage> {
    const max = checkPageLimit(limit);
    const { keys } = this.options;
    const byShard = userIds.length > 0 ? usersByShard(keys, userIds) : undefined;
    let at = pageToken === undefined ? { shard: 0, user: 0, after: '' } : parsePageToken(pageToken, keys.shards);
    const withTouches = this.lastSeen.overlay();
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
      const args = slice === undefined ? [wanted, 'all', at.after] : [wanted, 'users', at.after, ...slice.map(userKey)];
      const [members, records, seen, firstCount, lastCount, lastUser] = (await callRedis(() =>
        this.scripts.run('pgPage', [k.byUser, k.sessions, k.seen], args),
      )) as [string[], Reply[], Reply[], number, number, number];
      collectPage(members, records, seen, firstCount, lastCount, sessions, sessionCounts);
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
    withTouches(sessions);
    return { sessions, sessionCounts, next: at.shard < keys.shards ? JSON.stringify([at.shard, at.user, at.after]) : undefined };
  }

  readAfter(cursor: string, limit: number): Promise<PresenceEvent[]> {
    return this.feed.readAfter(cursor, limit);
  }

  follows(event: PresenceEvent, cursor: string): boolean {
    return this.feed.follows(event, cursor);
  }

  subscribe(listener: PresenceListener, onGap?: (reason: string) => void): () => void {
    return this.feed.subscribe(listener, onGap);
  }

  subscriberCount(): number {
    return this.feed.subscriberCount();
  }

  async close(): Promise<void> {
    this.lastSeen.close();
    await this.feed.close();
  }

  private wrote(userId: string, eventId: string): void {
    this.feed.wrote(this.options.keys.shardOf(userId), eventId);
  }

  private keysOf(userId: string): ShardKeys {
    return this.options.keys.shard(this.options.keys.shardOf(userId));
  }
}

/** Users passed to one page script at most: a watch of many users pages through them in slices. */
const USERS_PER_SCRIPT = 1000;

/** Per shard, the distinct given users that live there, in code unit order (the order pages take them in). */
function usersByShard(keys: RegistryKeys, userIds: readonly string[]): string[][] {
  const byShard: string[][] = Array.from({ length: keys.shards }, () => []);
  for (const userId of new Set(userIds)) byShard[keys.shardOf(userId)]!.push(userId);
  for (const users of byShard) users.sort();
  return byShard;
}

/**
 * Adds one script's page to the result. Each record gets its user's total: the script counted the
 * first and last users of its page (their sessions may run over into other pages); every user in
 * between has all its sessions in this page, so counting them here is exact.
 */
function collectPage(
  members: readonly string[],
  records: readonly Reply[],
  seen: readonly Reply[],
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
    const record = readRecord(records[i]!, seen[i]!);
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
