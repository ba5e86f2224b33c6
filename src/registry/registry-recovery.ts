import type { SessionRecord } from '../domain/session.js';
import type { RedisClient } from '../redis/client.js';
import { callRedis } from '../redis/errors.js';
import type { RedisFeedReader } from './redis-feed-reader.js';
import type { RegistryKeys, ShardKeys } from './redis-keys.js';
import { recordJson } from './redis-records.js';
import type { RegistryScripts } from './registry-scripts.js';

/**
 * What cluster membership asks of the shared registry (src/cluster/membership.ts): make Redis
 * agree with this node after trouble, remove a dead node's sessions, drop aged events.
 */
export interface RegistryRecovery {
  /** True when a sync is due: a write failed, or sessions closed that Redis has not been told of. */
  readonly needsSync: boolean;
  /**
   * Makes Redis agree with what this node holds: its live sessions are (re-)registered, the ones it
   * closed meanwhile are removed and announced. See sync-6.lua for which changes are announced.
   */
  sync(): Promise<{ restored: number; departed: number }>;
  /** Removes every session of a node whose lease lapsed, announcing each (reason node_lost) exactly once; resolves to how many. */
  reapNode(deadNodeId: string): Promise<number>;
  /** Drops events older than the retention age (count is bounded on every write). */
  trim(): Promise<void>;
}

/** A session this node closed while Redis could not be told; announced at the next sync. */
interface Departure {
  readonly record: SessionRecord;
  readonly reason: string;
  /** The shard's stream epoch the node knew then: a different one later means Redis lost its data. */
  readonly epoch: string;
}

/** Sessions per sync or reap script call: keeps each script short so Redis stays responsive. */
const SCRIPT_BATCH = 500;
/** How long a reaped marker tells a returning node that its sessions' departure was announced. */
const REAPED_MARKER_TTL_MS = 24 * 3_600_000;

/**
 * The Redis registry's recovery: it keeps what this node holds and what left while Redis could
 * not be told (the registry reports both as they happen), and replays it into Redis on `sync`.
 */
export class RedisRecovery implements RegistryRecovery {
  /** Sessions registered through this node and not yet unregistered: what it holds. */
  private readonly own = new Map<string, SessionRecord>();
  private readonly departures = new Map<string, Departure>();
  /** A write failed since the last sync, so Redis may disagree with what this node holds. */
  private dirty = false;

  constructor(
    private readonly deps: {
      readonly client: RedisClient;
      readonly scripts: RegistryScripts;
      readonly feed: RedisFeedReader;
      readonly keys: RegistryKeys;
      readonly nodeId: string;
      readonly retention: number;
      readonly retentionMs: number;
    },
  ) {}

  get needsSync(): boolean {
    return this.dirty || this.departures.size > 0;
  }

  /** A session is being registered; a failure to write it is reported with `writeFailed`. */
  holding(session: SessionRecord): void {
    if (session.nodeId === this.deps.nodeId) this.own.set(session.sessionId, session);
  }

  writeFailed(): void {
    this.dirty = true;
  }

  /** A session is being unregistered: this node no longer holds it. Resolves to its record if it was ours. */
  releasing(sessionId: string): SessionRecord | undefined {
    const mine = this.own.get(sessionId);
    this.own.delete(sessionId);
    return mine;
  }

  /** A session of ours left while Redis could not be told: the next sync announces it. */
  departedUnannounced(record: SessionRecord, reason: string): void {
    const epoch = this.deps.feed.epochOf(this.deps.keys.shardOf(record.userId));
    this.departures.set(record.sessionId, { record, reason, epoch });
  }

  async sync(): Promise<{ restored: number; departed: number }> {
    const { keys, nodeId, client, feed } = this.deps;
    this.dirty = false;
    const departures = new Map(this.departures);
    const live = [...this.own.values()];
    let restored = 0;
    let departed = 0;
    try {
      for (let shard = 0; shard < keys.shards; shard++) {
        const shardKeys = keys.shard(shard);
        const inShard = live.filter((s) => keys.shardOf(s.userId) === shard);
        const liveIds = new Set(inShard.map((s) => s.sessionId));
        const [members, reaped] = await callRedis(() =>
          Promise.all([client.smembers(shardKeys.node(nodeId)), client.get(shardKeys.reaped(nodeId))]),
        );
        const gone: Departure[] = [...departures.values()].filter((d) => keys.shardOf(d.record.userId) === shard);
        const leftovers = members.filter((id) => !liveIds.has(id) && !departures.has(id));
        gone.push(...(await this.leftoverDepartures(shardKeys, leftovers, feed.epochOf(shard))));
        for (let i = 0; i < Math.max(inShard.length, gone.length); i += SCRIPT_BATCH) {
          const [batchRestored, batchDeparted, lastEvent] = await this.syncBatch(
            shardKeys,
            reaped !== null,
            inShard.slice(i, i + SCRIPT_BATCH),
            gone.slice(i, i + SCRIPT_BATCH),
          );
          restored += batchRestored;
          departed += batchDeparted;
          feed.wrote(shard, lastEvent);
        }
        if (reaped !== null) await callRedis(() => client.del(shardKeys.reaped(nodeId)));
      }
    } catch (err) {
      this.dirty = true;
      throw err;
    }
    for (const sessionId of departures.keys()) this.departures.delete(sessionId);
    return { restored, departed };
  }

  /** One reap script per batch, each taking its sessions out of the node's set atomically. */
  async reapNode(deadNodeId: string): Promise<number> {
    const { keys, retention, scripts, feed } = this.deps;
    let reaped = 0;
    for (let shard = 0; shard < keys.shards; shard++) {
      const k = keys.shard(shard);
      for (let left = 1; left > 0; ) {
        const reply = (await callRedis(() =>
          scripts.run(
            'pgReap',
            [k.sessions, k.seen, k.users, k.node(deadNodeId), k.events, k.epoch, k.reaped(deadNodeId)],
            [deadNodeId, Date.now(), retention, REAPED_MARKER_TTL_MS, SCRIPT_BATCH],
          ),
        )) as [number, string, number];
        reaped += reply[0];
        feed.wrote(shard, reply[1]);
        left = reply[2];
      }
    }
    return reaped;
  }

  async trim(): Promise<void> {
    const minId = `${Math.max(0, Date.now() - this.deps.retentionMs)}-0`;
    for (let shard = 0; shard < this.deps.keys.shards; shard++) {
      const { events } = this.deps.keys.shard(shard);
      await callRedis(() => this.deps.client.xtrim(events, 'MINID', minId));
    }
  }

  private syncBatch(
    k: ShardKeys,
    reaped: boolean,
    live: readonly SessionRecord[],
    gone: readonly Departure[],
  ): Promise<[number, number, string]> {
    const { scripts, nodeId, retention } = this.deps;
    return callRedis(() =>
      scripts.run(
        'pgSync',
        [k.sessions, k.seen, k.users, k.node(nodeId), k.events, k.epoch],
        [
          nodeId,
          Date.now(),
          retention,
          reaped ? '1' : '0',
          live.length,
          ...live.flatMap((s) => [s.sessionId, s.userId, recordJson(s), s.lastSeenAtMs]),
          ...gone.flatMap((d) => [d.record.sessionId, d.record.userId, recordJson(d.record), d.reason, d.epoch]),
        ],
      ),
    ) as Promise<[number, number, string]>;
  }

  private async leftoverDepartures(keys: ShardKeys, sessionIds: readonly string[], epoch: string): Promise<Departure[]> {
    if (sessionIds.length === 0) return [];
    const records = await callRedis(() => this.deps.client.hmget(keys.sessions, ...sessionIds));
    const found: Departure[] = [];
    records.forEach((json) => {
      if (json !== null && json !== undefined)
        found.push({ record: JSON.parse(json) as SessionRecord, reason: 'client_disconnect', epoch });
    });
    return found;
  }
}
