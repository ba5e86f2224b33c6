import type { Logger } from 'pino';
import type { PresenceEvent, PresenceListener, SessionsPage } from '../domain/presence.js';
import { matchesFilter, type SessionFilter, type SessionRecord } from '../domain/session.js';
import type { SessionRegistry } from '../domain/session-registry.js';
import type { RedisClient, Reply } from '../redis/client.js';
import { callRedis } from '../redis/errors.js';
import { LastSeenBatcher } from './last-seen-batcher.js';
import { encodeCursor } from './redis-cursor.js';
import { RedisFeedReader } from './redis-feed-reader.js';
import { type RegistryKeys, type ShardKeys, userKey } from './redis-keys.js';
import { readSessionsPage } from './redis-pages.js';
import { byConnection, parseUserHash, pipelineReplies, readRecord, recordJson } from './redis-records.js';
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
 * The cluster-mode registry: sessions and presence events in Redis, shared by every node (key
 * layout: redis-keys.ts). Each change is one Lua script (atomic, one round trip) that also appends
 * its presence events to the shard's stream; the feed reader follows the streams (see
 * RedisFeedReader). A push lookup is one plain HGETALL of the user's hash: no script, no decoding in Redis.
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
        [keys.user(userKey(session.userId)), keys.byUser, keys.node(session.nodeId), keys.events, keys.epoch],
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
          [keys.user(userKey(userId)), keys.byUser, keys.node(this.options.nodeId), keys.events, keys.epoch],
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
    const key = this.keysOf(userId).user(userKey(userId));
    const withTouches = this.lastSeen.overlay();
    const { client } = this.options;
    const reply = (await callRedis(() => this.scripts.observed('pgLookup', () => client.call('HGETALL', key)))) as Reply[];
    const found = parseUserHash(reply).filter((session) => matchesFilter(session, filter));
    return withTouches(found).sort(byConnection);
  }

  /** One pipeline of HGETALLs per shard holding any of the users (one round trip each), every shard at once. */
  async lookupMany(userIds: readonly string[], filter?: SessionFilter): Promise<Map<string, SessionRecord[]>> {
    const { keys, client } = this.options;
    const found = new Map<string, SessionRecord[]>(userIds.map((userId) => [userId, []]));
    const withTouches = this.lastSeen.overlay();
    const byShard = new Map<number, string[]>();
    for (const userId of found.keys()) {
      const shard = keys.shardOf(userId);
      if (!byShard.get(shard)?.push(userId)) byShard.set(shard, [userId]);
    }
    const replies = [...byShard].map(async ([shard, users]) => {
      const k = keys.shard(shard);
      const pipeline = client.pipeline();
      for (const userId of users) pipeline.call('HGETALL', k.user(userKey(userId)));
      const reply = await callRedis(() => this.scripts.observed('pgLookupMany', async () => pipelineReplies(await pipeline.exec())));
      users.forEach((userId, u) => {
        const sessions = parseUserHash(reply[u] as Reply[]).filter((s) => matchesFilter(s, filter));
        found.set(userId, withTouches(sessions).sort(byConnection));
      });
    });
    await Promise.all(replies);
    return found;
  }

  async position(): Promise<string> {
    const { shards } = this.options.keys;
    return encodeCursor(await Promise.all(Array.from({ length: shards }, (_, shard) => this.feed.position(shard))));
  }

  /** See readSessionsPage (redis-pages.ts). */
  async sessionsPage(userIds: readonly string[], pageToken: string | undefined, limit: number): Promise<SessionsPage> {
    const withTouches = this.lastSeen.overlay();
    const page = await readSessionsPage({ ...this.options, scripts: this.scripts }, userIds, pageToken, limit);
    withTouches(page.sessions);
    return page;
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
