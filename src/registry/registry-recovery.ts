import type { Logger } from 'pino';
import type { SessionRecord } from '../domain/session.js';
import { isPushgateError } from '../errors.js';
import type { RedisClient } from '../redis/client.js';
import { callRedis } from '../redis/errors.js';
import type { RedisFeedReader } from './redis-feed-reader.js';
import { type RegistryKeys, type ShardKeys, splitMember, userIdOf, userKey } from './redis-keys.js';
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
   * closed meanwhile are removed and announced. See sync-n.lua for which changes are announced.
   */
  sync(): Promise<{ restored: number; departed: number }>;
  /** Removes every session of a node whose lease lapsed, announcing each (reason node_lost) exactly once; resolves to how many. */
  reapNode(deadNodeId: string): Promise<number>;
  /** Drops events older than the retention age (count is bounded on every write). */
  trim(): Promise<void>;
}

/** A session this node closed while Redis could not be told (or left over in its set); announced at the next sync. */
interface Departure {
  readonly sessionId: string;
  readonly userId: string;
  readonly userKey: string;
  /** Announced only if Redis no longer has the session's own record; '' for leftovers (Redis has it). */
  readonly recordJson: string;
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
  /**
   * Session ids whose sync failed on their own data (see syncBatch): no longer retried, so one bad
   * record cannot keep this node unsynced (and unhealthy) for ever. An id leaves with its session.
   */
  private readonly setAside = new Set<string>();
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
      readonly log: Logger;
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
    this.setAside.delete(sessionId);
    return mine;
  }

  /** A session of ours left while Redis could not be told: the next sync announces it. */
  departedUnannounced(record: SessionRecord, reason: string): void {
    const epoch = this.deps.feed.epochOf(this.deps.keys.shardOf(record.userId));
    let json: string;
    try {
      json = recordJson(record);
    } catch {
      json = '';
    }
    const { sessionId, userId } = record;
    this.departures.set(sessionId, { sessionId, userId, userKey: userKey(userId), recordJson: json, reason, epoch });
  }

  async sync(): Promise<{ restored: number; departed: number }> {
    const { keys, nodeId, client, feed } = this.deps;
    this.dirty = false;
    const departures = new Map(this.departures);
    const live = [...this.own.values()].filter((s) => !this.setAside.has(s.sessionId));
    let restored = 0;
    let departed = 0;
    try {
      for (let shard = 0; shard < keys.shards; shard++) {
        const shardKeys = keys.shard(shard);
        const inShard = live.filter((s) => keys.shardOf(s.userId) === shard);
        const liveIds = new Set(inShard.map((s) => s.sessionId));
        const members = await callRedis(() => client.smembers(shardKeys.node(nodeId)));
        const gone: Departure[] = [...departures.values()].filter((d) => keys.shardOf(d.userId) === shard);
        gone.push(...(await this.leftoverDepartures(shardKeys, members, liveIds, departures, feed.epochOf(shard))));
        // At least one batch, even an empty one: the last clears the shard's reaped marker.
        const batches = Math.max(1, Math.ceil(Math.max(inShard.length, gone.length) / SCRIPT_BATCH));
        for (let b = 0; b < batches; b++) {
          const at = b * SCRIPT_BATCH;
          const slice = [inShard.slice(at, at + SCRIPT_BATCH), gone.slice(at, at + SCRIPT_BATCH)] as const;
          const [batchRestored, batchDeparted] = await this.syncBatch(shard, b === batches - 1, ...slice);
          restored += batchRestored;
          departed += batchDeparted;
        }
      }
    } catch (err) {
      this.dirty = true;
      throw err;
    }
    for (const sessionId of departures.keys()) this.departures.delete(sessionId);
    return { restored, departed };
  }

  /** Batch by batch: SRANDMEMBER picks members of the dead node's set, reap-n.lua removes them (each once, however many race). */
  async reapNode(deadNodeId: string): Promise<number> {
    const { keys, retention, scripts, feed, client } = this.deps;
    let reaped = 0;
    for (let shard = 0; shard < keys.shards; shard++) {
      const k = keys.shard(shard);
      const nodeKey = k.node(deadNodeId);
      for (let left = 1; left > 0; ) {
        const members = await callRedis(() => client.srandmember(nodeKey, SCRIPT_BATCH));
        if (members.length === 0) break;
        // A member that is no index member (written by hand) names no user: another key of the shard stands in.
        const userKeys = members.map((member) => {
          const parts = splitMember(member);
          return parts === undefined ? nodeKey : k.user(parts.userKey);
        });
        const reply = (await callRedis(() =>
          scripts.run(
            'pgReap',
            [k.byUser, nodeKey, k.events, k.epoch, k.reaped(deadNodeId), ...userKeys],
            [deadNodeId, Date.now(), retention, REAPED_MARKER_TTL_MS, ...members],
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

  /**
   * One sync script for a batch. If it fails on data rather than on the connection, each of its
   * sessions is synced alone, and one that still fails is set aside with a warning naming it: a
   * bad record must not keep this node unsynced for ever. (No script decodes a record any more,
   * so this is a guard for what cannot be foreseen, such as a record that cannot be serialized.)
   * `last`: the shard's last batch, whose script clears the reaped marker.
   */
  private async syncBatch(
    shard: number,
    last: boolean,
    live: readonly SessionRecord[],
    gone: readonly Departure[],
  ): Promise<[number, number]> {
    try {
      return await this.runSync(shard, last, live, gone);
    } catch (err) {
      if (!isDataError(err)) throw err;
      if (live.length + gone.length === 1) {
        this.putAside(live[0]?.sessionId ?? gone[0]!.sessionId, err);
        return [0, 0];
      }
    }
    let restored = 0;
    let departed = 0;
    const singles = [...live.map((s) => [[s], []] as const), ...gone.map((d) => [[], [d]] as const)];
    for (const [i, [one, alone]] of singles.entries()) {
      const [r, d] = await this.syncBatch(shard, last && i === singles.length - 1, one, alone);
      restored += r;
      departed += d;
    }
    return [restored, departed];
  }

  private putAside(sessionId: string, err: unknown): void {
    this.setAside.add(sessionId);
    this.departures.delete(sessionId);
    this.deps.log.warn(
      { sessionId, err: err instanceof Error ? err.message : String(err) },
      'session set aside: its record fails to sync into Redis; it stays connected here but is not retried',
    );
  }

  private async runSync(
    shard: number,
    last: boolean,
    live: readonly SessionRecord[],
    gone: readonly Departure[],
  ): Promise<[number, number]> {
    const { scripts, nodeId, retention, keys, feed } = this.deps;
    const k = keys.shard(shard);
    // Built before the call: an error here is the data's, not the connection's.
    const args = [
      nodeId,
      Date.now(),
      retention,
      last ? '1' : '0',
      live.length,
      ...live.flatMap((s) => [s.sessionId, s.userId, userKey(s.userId), recordJson(s), s.lastSeenAtMs]),
      ...gone.flatMap((d) => [d.sessionId, d.userId, d.userKey, d.recordJson, d.reason, d.epoch]),
    ];
    const userKeys = [...live.map((s) => k.user(userKey(s.userId))), ...gone.map((d) => k.user(d.userKey))];
    const [restored, departed, lastEvent] = (await callRedis(() =>
      scripts.run('pgSync', [k.byUser, k.node(nodeId), k.events, k.epoch, k.reaped(nodeId), ...userKeys], args),
    )) as [number, number, string];
    feed.wrote(shard, lastEvent);
    return [restored, departed];
  }

  /**
   * Sessions in this node's set that it no longer holds (closed while Redis could not be told and
   * not known as departed, e.g. after a restart): removed and announced with client_disconnect.
   * The set's members name each session's user, so no record needs reading; a member that is not
   * an index member (written by hand) is dropped from the set.
   */
  private async leftoverDepartures(
    keys: ShardKeys,
    members: readonly string[],
    liveIds: ReadonlySet<string>,
    departures: ReadonlyMap<string, Departure>,
    epoch: string,
  ): Promise<Departure[]> {
    const found: Departure[] = [];
    const malformed: string[] = [];
    for (const member of members) {
      const parts = splitMember(member);
      if (parts === undefined) {
        malformed.push(member);
        continue;
      }
      const { userKey: key, sessionId } = parts;
      if (liveIds.has(sessionId) || departures.has(sessionId) || this.setAside.has(sessionId)) continue;
      found.push({ sessionId, userId: userIdOf(key), userKey: key, recordJson: '', reason: 'client_disconnect', epoch });
    }
    if (malformed.length > 0) {
      this.deps.log.warn(
        { members: malformed.slice(0, 10), count: malformed.length },
        'dropped malformed members from this node’s session set',
      );
      await callRedis(() => this.deps.client.srem(keys.node(this.deps.nodeId), ...malformed));
    }
    return found;
  }
}

/** Redis errors that say nothing about the data sent: the call may succeed later as it is. */
const TRANSIENT = /^(OOM|BUSY|LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOSCRIPT|MOVED|ASK|NOREPLICAS)\b/;

/**
 * True when a sync call failed on what it sent: an error building the call, or a script error
 * Redis replied with. A lost connection, a timeout or a busy server is not (the batch is retried
 * whole at the next sync).
 */
function isDataError(err: unknown): boolean {
  if (!isPushgateError(err)) return true;
  if (err.code !== 'registry_unavailable') return false;
  const cause = err.cause;
  return cause instanceof Error && cause.name === 'ReplyError' && !TRANSIENT.test(cause.message);
}
