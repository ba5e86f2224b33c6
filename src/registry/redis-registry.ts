import type { Logger } from 'pino';
import type { PresenceEvent, PresenceListener, RegistrySnapshot } from '../domain/presence.js';
import { matchesFilter, type SessionFilter, type SessionRecord } from '../domain/session.js';
import type { SessionRegistry } from '../domain/session-registry.js';
import type { RedisClient, Reply } from '../redis/client.js';
import { callRedis } from '../redis/errors.js';
import { LastSeenBatcher } from './last-seen-batcher.js';
import { encodeCursor, type ShardPosition } from './redis-cursor.js';
import { RedisFeedReader } from './redis-feed-reader.js';
import type { RegistryKeys, ShardKeys } from './redis-keys.js';
import { byConnection, parseRecord, parseRecords, recordJson } from './redis-records.js';
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
    this.nodeRecovery = new RedisRecovery({ client, scripts: this.scripts, feed: this.feed, keys, nodeId, retention, retentionMs });
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
        [keys.sessions, keys.seen, keys.users, keys.node(session.nodeId), keys.events, keys.epoch],
        [session.sessionId, session.userId, recordJson(session), session.lastSeenAtMs, Date.now(), this.options.retention],
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
          [keys.sessions, keys.seen, keys.users, keys.node(this.options.nodeId), keys.events, keys.epoch],
          [sessionId, userId, reason, Date.now(), this.options.retention],
        ),
      );
    } catch (err) {
      if (mine !== undefined) this.nodeRecovery.departedUnannounced(mine, reason);
      throw err;
    }
    if (!Array.isArray(reply)) return undefined;
    this.wrote(userId, reply[2] as string);
    return parseRecord(reply[0] as string, reply[1] as string);
  }

  async touch(userId: string, sessionId: string, atMs: number): Promise<void> {
    this.lastSeen.touch(userId, sessionId, atMs);
  }

  async lookup(userId: string, filter?: SessionFilter): Promise<SessionRecord[]> {
    const keys = this.keysOf(userId);
    const withTouches = this.lastSeen.overlay();
    const reply = (await callRedis(() => this.scripts.run('pgLookup', [keys.users, keys.sessions, keys.seen], [userId]))) as Reply[][];
    const found = parseRecords(reply[0]!, reply[1]!).filter((session) => matchesFilter(session, filter));
    return withTouches(found).sort(byConnection);
  }

  async snapshot(userIds: readonly string[]): Promise<RegistrySnapshot> {
    const { keys } = this.options;
    const withTouches = this.lastSeen.overlay();
    const usersByShard = new Map<number, string[]>();
    for (const userId of new Set(userIds)) {
      const shard = keys.shardOf(userId);
      const users = usersByShard.get(shard);
      if (users === undefined) usersByShard.set(shard, [userId]);
      else users.push(userId);
    }
    const parts = await Promise.all(
      Array.from({ length: keys.shards }, (_, shard) => {
        const users = usersByShard.get(shard);
        // A filtered snapshot still needs every shard's position for its cursor; a position is cheap.
        if (userIds.length > 0 && users === undefined) return this.feed.position(shard).then((position) => ({ position, sessions: [] }));
        return this.snapshotShard(shard, users ?? []);
      }),
    );
    const sessions = withTouches(parts.flatMap((part) => part.sessions));
    // Grouped by user, oldest connection first within each.
    sessions.sort((a, b) => (a.userId === b.userId ? byConnection(a, b) : a.userId < b.userId ? -1 : 1));
    return { sessions, cursor: encodeCursor(parts.map((part) => part.position)) };
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

  private async snapshotShard(shard: number, userIds: readonly string[]): Promise<{ position: ShardPosition; sessions: SessionRecord[] }> {
    const keys = this.options.keys.shard(shard);
    const reply = (await callRedis(() =>
      this.scripts.run('pgSnapshot', [keys.sessions, keys.seen, keys.users, keys.events, keys.epoch], userIds),
    )) as Reply[];
    return {
      position: { epoch: reply[0] as string, id: reply[1] as string, n: reply[2] as number },
      sessions: parseRecords(reply[3] as Reply[], reply[4] as Reply[]),
    };
  }

  private wrote(userId: string, eventId: string): void {
    this.feed.wrote(this.options.keys.shardOf(userId), eventId);
  }

  private keysOf(userId: string): ShardKeys {
    return this.options.keys.shard(this.options.keys.shardOf(userId));
  }
}
