import type { Logger } from 'pino';
import type { PresenceEvent, PresenceKind, PresenceListener } from '../domain/presence.js';
import { matchesFilter, type SessionFilter, type SessionRecord } from '../domain/session.js';
import { PushgateError, isPushgateError } from '../errors.js';
import { compareIds, decodeCursor, encodeCursor, type ShardPosition } from './redis-cursor.js';
import type { RedisKeys, ShardKeys } from './redis-keys.js';
import { describeRedisError, type RedisClient, type Reply, type Scripts } from './redis-scripts.js';
import type { RegistrySnapshot, SessionRegistry } from './session-registry.js';

export interface RedisRegistryOptions {
  /** Client for commands: no offline queue and a command timeout, so calls fail fast. */
  readonly client: RedisClient;
  /** The registry scripts, defined on `client`. */
  readonly scripts: Scripts;
  /** Opens a connection for one shard's blocking stream reads (it must not share the command client). */
  readonly openReader: () => RedisClient;
  readonly keys: RedisKeys;
  readonly nodeId: string;
  /** Events kept per shard. */
  readonly retention: number;
  readonly retentionMs: number;
  /** last_seen_at refreshes are written in one batch per shard this often. */
  readonly touchFlushMs: number;
  readonly log: Logger;
}

/** A session this node closed while Redis could not be told; announced at the next sync. */
interface Departure {
  readonly record: SessionRecord;
  readonly reason: string;
  /** The shard's stream epoch the node knew then: a different one later means Redis lost its data. */
  readonly epoch: string;
}

const READ_BLOCK_MS = 5000;
const READ_BATCH = 500;
const READER_RETRY_MS = 250;
/** Sessions per sync or reap script call: keeps each script short so Redis stays responsive. */
const SCRIPT_BATCH = 500;
/** How long a reaped marker tells a returning node that its sessions' departure was announced. */
const REAPED_MARKER_TTL_MS = 24 * 3_600_000;

/**
 * The cluster-mode registry: sessions and presence events in Redis, shared by every node. Each
 * change is one Lua script (atomic, one round trip) that also appends its presence events to the
 * shard's stream; every node reads every shard's stream and hands the events to its listeners, so
 * subscribers anywhere see the changes of all nodes, per user in order.
 *
 * Besides the SessionRegistry contract it serves the node's membership (src/cluster/membership.ts):
 * `sync` re-registers what this node holds after Redis trouble, `reapNode` removes a dead node's
 * sessions, `trim` drops events older than the retention age.
 */
export class RedisSessionRegistry implements SessionRegistry {
  private readonly scripts: Scripts;
  /**
   * Each listener with the newest event id, per shard, of this node's own changes when it
   * subscribed: the stream is read a moment behind, and a new listener must not be handed events
   * of changes this node completed before it subscribed.
   */
  private readonly listeners = new Map<PresenceListener, Subscription>();
  /** Per shard: the newest event handed to listeners (its number reveals events trimmed before they were read). */
  private readonly positions: ShardPosition[] = [];
  /** Per shard: the newest event id of a change made through this registry. */
  private readonly written: string[] = [];
  private readonly readers: RedisClient[] = [];
  private readonly readLoops: Promise<void>[] = [];
  /** Sessions registered through this node and not yet unregistered: what it holds. */
  private readonly own = new Map<string, SessionRecord>();
  private readonly departures = new Map<string, Departure>();
  private touches = new Map<string, Touch>();
  /** The batch being written: still overlaid on reads until Redis has it. */
  private flushing = new Map<string, Touch>();
  private readonly flushTimer: NodeJS.Timeout;
  /** A write failed since the last sync, so Redis may disagree with what this node holds. */
  private dirty = false;
  private closed = false;

  constructor(private readonly options: RedisRegistryOptions) {
    this.scripts = options.scripts;
    this.flushTimer = setInterval(() => void this.flushTouches(), options.touchFlushMs);
    this.flushTimer.unref();
  }

  /** Reads each shard's feed position and starts following the shards' streams. */
  async start(): Promise<void> {
    const { shards } = this.options.keys;
    for (let shard = 0; shard < shards; shard++) {
      const position = await this.position(shard);
      this.positions.push(position);
      this.written.push(position.id);
    }
    for (let shard = 0; shard < shards; shard++) {
      const reader = this.options.openReader();
      this.readers.push(reader);
      this.readLoops.push(this.follow(shard, reader));
    }
  }

  /** True when a sync is due: a write failed, or sessions closed that Redis has not been told of. */
  get needsSync(): boolean {
    return this.dirty || this.departures.size > 0;
  }

  async register(session: SessionRecord): Promise<void> {
    const keys = this.keysOf(session.userId);
    if (session.nodeId === this.options.nodeId) this.own.set(session.sessionId, session);
    const lastEvent = await this.call(() =>
      this.scripts.run(
        'pgRegister',
        [keys.sessions, keys.seen, keys.users, keys.node(session.nodeId), keys.events, keys.epoch],
        [session.sessionId, session.userId, recordJson(session), session.lastSeenAtMs, Date.now(), this.options.retention],
      ),
    ).catch((err: unknown) => {
      this.dirty = true;
      throw err;
    });
    this.wrote(session.userId, lastEvent as string);
  }

  async unregister(userId: string, sessionId: string, reason: string): Promise<SessionRecord | undefined> {
    const keys = this.keysOf(userId);
    const mine = this.own.get(sessionId);
    this.own.delete(sessionId);
    this.touches.delete(sessionId);
    this.flushing.delete(sessionId);
    let reply: Reply;
    try {
      reply = await this.call(() =>
        this.scripts.run(
          'pgUnregister',
          [keys.sessions, keys.seen, keys.users, keys.node(this.options.nodeId), keys.events, keys.epoch],
          [sessionId, userId, reason, Date.now(), this.options.retention],
        ),
      );
    } catch (err) {
      const epoch = this.positions[this.options.keys.shardOf(userId)]!.epoch;
      if (mine !== undefined) this.departures.set(sessionId, { record: mine, reason, epoch });
      throw err;
    }
    if (!Array.isArray(reply)) return undefined;
    this.wrote(userId, reply[2] as string);
    return parseRecord(reply[0] as string, reply[1] as string);
  }

  async touch(userId: string, sessionId: string, atMs: number): Promise<void> {
    const pending = this.touches.get(sessionId);
    if (pending === undefined || pending.atMs < atMs) this.touches.set(sessionId, { userId, atMs });
  }

  async lookup(userId: string, filter?: SessionFilter): Promise<SessionRecord[]> {
    const keys = this.keysOf(userId);
    const pending = this.pendingTouches();
    const reply = (await this.call(() => this.scripts.run('pgLookup', [keys.users, keys.sessions, keys.seen], [userId]))) as Reply[][];
    const found = parseRecords(reply[0]!, reply[1]!).filter((session) => matchesFilter(session, filter));
    return withTouches(found, pending).sort(byConnection);
  }

  async snapshot(userIds: readonly string[]): Promise<RegistrySnapshot> {
    const { shards } = this.options.keys;
    const pending = this.pendingTouches();
    const usersByShard = new Map<number, string[]>();
    for (const userId of new Set(userIds)) {
      const shard = this.options.keys.shardOf(userId);
      usersByShard.set(shard, [...(usersByShard.get(shard) ?? []), userId]);
    }
    const parts = await Promise.all(
      Array.from({ length: shards }, (_, shard) => {
        const users = usersByShard.get(shard);
        // A filtered snapshot still needs every shard's position for its cursor; a position is cheap.
        if (userIds.length > 0 && users === undefined) return this.position(shard).then((position) => ({ position, sessions: [] }));
        return this.snapshotShard(shard, users ?? []);
      }),
    );
    const sessions = withTouches(
      parts.flatMap((part) => part.sessions),
      pending,
    );
    // Grouped by user, oldest connection first within each.
    sessions.sort((a, b) => (a.userId === b.userId ? byConnection(a, b) : a.userId < b.userId ? -1 : 1));
    return { sessions, cursor: encodeCursor(parts.map((part) => part.position)) };
  }

  async readAfter(cursor: string, limit: number): Promise<PresenceEvent[]> {
    const { shards } = this.options.keys;
    const from = decodeCursor(cursor, shards);
    const replies = await Promise.all(
      from.map((position, shard) => {
        const keys = this.options.keys.shard(shard);
        return this.call(() => this.scripts.run('pgReadAfter', [keys.events, keys.epoch], [position.epoch, position.id, position.n, limit]));
      }),
    );
    const expired = replies.some((reply) => (reply as Reply[])[0] === 'expired');
    if (expired) {
      const oldest = encodeCursor(
        replies.map((reply) => {
          const [, epoch, id, n] = reply as [string, string, string, number];
          return { epoch, id, n };
        }),
      );
      throw new PushgateError(
        'cursor_expired',
        `cursor is older than the presence events still held (PUSHGATE_PRESENCE_RETENTION / _MS) or from before Redis lost its data; the oldest cursor still held is ${oldest}`,
        { details: { oldest_cursor: oldest } },
      );
    }
    const entries: { shard: number; entry: StreamEntry }[] = [];
    replies.forEach((reply, shard) => {
      for (const entry of (reply as Reply[])[4] as StreamEntry[]) entries.push({ shard, entry });
    });
    entries.sort((a, b) => compareIds(a.entry[0], b.entry[0]) || a.shard - b.shard);
    const position = [...from];
    return entries.slice(0, limit).map(({ shard, entry }) => {
      position[shard] = { epoch: from[shard]!.epoch, id: entry[0], n: Number(fieldOf(entry, 'n')) };
      return parseEvent(entry, encodeCursor(position));
    });
  }

  follows(event: PresenceEvent, cursor: string): boolean {
    const { keys } = this.options;
    const shard = keys.shardOf(event.userId);
    const seen = decodeCursor(cursor, keys.shards)[shard]!;
    const at = decodeCursor(event.cursor, keys.shards)[shard]!;
    // An event of a newer stream (Redis lost its data in between) is always new to the reader.
    return at.epoch !== seen.epoch || compareIds(at.id, seen.id) > 0;
  }

  subscribe(listener: PresenceListener, onGap?: (reason: string) => void): () => void {
    this.listeners.set(listener, { since: [...this.written], onGap });
    return () => {
      this.listeners.delete(listener);
    };
  }

  subscriberCount(): number {
    return this.listeners.size;
  }

  /**
   * Makes Redis agree with what this node holds: its live sessions are (re-)registered, the ones it
   * closed meanwhile are removed and announced. See sync-6.lua for which changes are announced.
   */
  async sync(): Promise<{ restored: number; departed: number }> {
    const { keys, nodeId } = this.options;
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
        const [members, reaped] = await this.call(() =>
          Promise.all([this.options.client.smembers(shardKeys.node(nodeId)), this.options.client.get(shardKeys.reaped(nodeId))]),
        );
        const gone: Departure[] = [...departures.values()].filter((d) => keys.shardOf(d.record.userId) === shard);
        const leftovers = members.filter((id) => !liveIds.has(id) && !departures.has(id));
        gone.push(...(await this.leftoverDepartures(shardKeys, leftovers, this.positions[shard]!.epoch)));
        for (let i = 0; i < Math.max(inShard.length, gone.length); i += SCRIPT_BATCH) {
          const batchLive = inShard.slice(i, i + SCRIPT_BATCH);
          const batchGone = gone.slice(i, i + SCRIPT_BATCH);
          const reply = (await this.call(() =>
            this.scripts.run(
              'pgSync',
              [shardKeys.sessions, shardKeys.seen, shardKeys.users, shardKeys.node(nodeId), shardKeys.events, shardKeys.epoch],
              [
                nodeId,
                Date.now(),
                this.options.retention,
                reaped === null ? '0' : '1',
                batchLive.length,
                ...batchLive.flatMap((s) => [s.sessionId, s.userId, recordJson(s), s.lastSeenAtMs]),
                ...batchGone.flatMap((d) => [d.record.sessionId, d.record.userId, recordJson(d.record), d.reason, d.epoch]),
              ],
            ),
          )) as [number, number, string];
          restored += reply[0];
          departed += reply[1];
          this.wroteShard(shard, reply[2]);
        }
        if (reaped !== null) await this.call(() => this.options.client.del(shardKeys.reaped(nodeId)));
      }
    } catch (err) {
      this.dirty = true;
      throw err;
    }
    for (const sessionId of departures.keys()) this.departures.delete(sessionId);
    return { restored, departed };
  }

  /**
   * Removes every session of a node whose lease lapsed, announcing each (reason node_lost) exactly
   * once: one script per batch, each taking its sessions out of the node's set atomically.
   */
  async reapNode(deadNodeId: string): Promise<number> {
    const { keys, retention } = this.options;
    let reaped = 0;
    for (let shard = 0; shard < keys.shards; shard++) {
      const shardKeys = keys.shard(shard);
      for (let left = 1; left > 0; ) {
        const reply = (await this.call(() =>
          this.scripts.run(
            'pgReap',
            [shardKeys.sessions, shardKeys.seen, shardKeys.users, shardKeys.node(deadNodeId), shardKeys.events, shardKeys.epoch, shardKeys.reaped(deadNodeId)],
            [deadNodeId, Date.now(), retention, REAPED_MARKER_TTL_MS, SCRIPT_BATCH],
          ),
        )) as [number, string, number];
        reaped += reply[0];
        this.wroteShard(shard, reply[1]);
        left = reply[2];
      }
    }
    return reaped;
  }

  /** Drops events older than the retention age (count is bounded on every write). */
  async trim(): Promise<void> {
    const minId = `${Math.max(0, Date.now() - this.options.retentionMs)}-0`;
    for (let shard = 0; shard < this.options.keys.shards; shard++) {
      const { events } = this.options.keys.shard(shard);
      await this.call(() => this.options.client.xtrim(events, 'MINID', minId));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.flushTimer);
    this.listeners.clear();
    for (const reader of this.readers) reader.disconnect();
    await Promise.all(this.readLoops);
  }

  /** Writes the batched last_seen_at refreshes: one script per shard. Lost refreshes are retried by the next pong. */
  private async flushTouches(): Promise<void> {
    if (this.touches.size === 0 || this.flushing.size > 0) return;
    this.flushing = this.touches;
    this.touches = new Map();
    const byShard = new Map<number, (string | number)[]>();
    for (const [sessionId, { userId, atMs }] of this.flushing) {
      const shard = this.options.keys.shardOf(userId);
      const args = byShard.get(shard) ?? [];
      args.push(sessionId, atMs);
      byShard.set(shard, args);
    }
    for (const [shard, args] of byShard) {
      const keys = this.options.keys.shard(shard);
      await this.scripts.run('pgTouch', [keys.sessions, keys.seen], args).catch((err: unknown) => {
        this.options.log.debug({ err }, 'last_seen_at refresh failed; the next heartbeat retries');
      });
    }
    this.flushing = new Map();
  }

  /**
   * The refreshes Redis may not have yet, taken before a read is sent: a batch flushed while the
   * read is in flight may land after it, and is cleared here before the read returns.
   */
  private pendingTouches(): readonly ReadonlyMap<string, Touch>[] {
    return [this.flushing, this.touches];
  }

  private async leftoverDepartures(keys: ShardKeys, sessionIds: readonly string[], epoch: string): Promise<Departure[]> {
    if (sessionIds.length === 0) return [];
    const records = await this.call(() => this.options.client.hmget(keys.sessions, ...sessionIds));
    const found: Departure[] = [];
    records.forEach((json) => {
      if (json !== null && json !== undefined) found.push({ record: JSON.parse(json) as SessionRecord, reason: 'client_disconnect', epoch });
    });
    return found;
  }

  private async position(shard: number): Promise<ShardPosition> {
    const keys = this.options.keys.shard(shard);
    const [epoch, id, n] = (await this.call(() => this.scripts.run('pgPosition', [keys.events, keys.epoch], []))) as [string, string, number];
    return { epoch, id, n };
  }

  private async snapshotShard(shard: number, userIds: readonly string[]): Promise<{ position: ShardPosition; sessions: SessionRecord[] }> {
    const keys = this.options.keys.shard(shard);
    const reply = (await this.call(() =>
      this.scripts.run('pgSnapshot', [keys.sessions, keys.seen, keys.users, keys.events, keys.epoch], userIds),
    )) as Reply[];
    return {
      position: { epoch: reply[0] as string, id: reply[1] as string, n: reply[2] as number },
      sessions: parseRecords(reply[3] as Reply[], reply[4] as Reply[]),
    };
  }

  /**
   * Follows one shard's event stream with blocking reads and hands each event to the listeners.
   * After a connection loss it checks the stream's epoch: a new epoch (Redis lost its data) is
   * read from its start, the same one from where this node left off.
   */
  private async follow(shard: number, reader: RedisClient): Promise<void> {
    const keys = this.options.keys.shard(shard);
    let recheck = false;
    while (!this.closed) {
      try {
        if (recheck) {
          const current = await this.position(shard);
          if (current.epoch !== this.positions[shard]!.epoch) this.positions[shard] = { epoch: current.epoch, id: '0-0', n: 0 };
          recheck = false;
        }
        const reply = (await reader.xread('COUNT', READ_BATCH, 'BLOCK', READ_BLOCK_MS, 'STREAMS', keys.events, this.positions[shard]!.id)) as
          | [string, StreamEntry[]][]
          | null;
        for (const entry of reply?.[0]?.[1] ?? []) this.deliver(shard, entry);
      } catch (err) {
        if (this.closed) return;
        this.options.log.debug({ err, shard }, 'presence stream read failed; retrying');
        recheck = true;
        await new Promise((resolve) => setTimeout(resolve, READER_RETRY_MS));
      }
    }
  }

  private deliver(shard: number, entry: StreamEntry): void {
    const position = this.positions[shard]!;
    const n = Number(fieldOf(entry, 'n'));
    this.positions[shard] = { epoch: position.epoch, id: entry[0], n };
    if (n > position.n + 1) this.lostEvents(shard, n - position.n - 1);
    if (this.listeners.size === 0) return;
    const event = parseEvent(entry, encodeCursor(this.positions));
    for (const [listener, { since }] of this.listeners) {
      if (compareIds(entry[0], since[shard]!) <= 0) continue;
      try {
        listener(event);
      } catch (err) {
        this.options.log.error({ err }, 'presence listener failed');
      }
    }
  }

  /** Events were trimmed before this node read them: every subscription that can tell its reader ends. */
  private lostEvents(shard: number, count: number): void {
    const reason = `this node's presence feed fell ${count} events behind the retained window of shard ${shard} (PUSHGATE_PRESENCE_RETENTION)`;
    this.options.log.warn({ shard, lost: count }, 'presence events were trimmed before this node read them');
    for (const [listener, { onGap }] of [...this.listeners]) {
      if (onGap === undefined) continue;
      this.listeners.delete(listener);
      onGap(reason);
    }
  }

  private wrote(userId: string, eventId: string): void {
    this.wroteShard(this.options.keys.shardOf(userId), eventId);
  }

  private wroteShard(shard: number, eventId: string): void {
    if (eventId !== '' && compareIds(eventId, this.written[shard]!) > 0) this.written[shard] = eventId;
  }

  private keysOf(userId: string): ShardKeys {
    return this.options.keys.shard(this.options.keys.shardOf(userId));
  }

  /** Runs a Redis call; any failure to reach Redis becomes `registry_unavailable`. */
  private async call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (isPushgateError(err)) throw err;
      throw new PushgateError('registry_unavailable', `session registry unavailable: ${describeRedisError(err as Error)}`, { cause: err });
    }
  }
}

type StreamEntry = [id: string, fields: string[]];

/** A last_seen_at refresh waiting for the next batch. */
interface Touch {
  readonly userId: string;
  readonly atMs: number;
}

interface Subscription {
  /** Per shard: the newest event id of this node's own changes when the listener subscribed. */
  readonly since: readonly string[];
  readonly onGap: ((reason: string) => void) | undefined;
}

/** The stored form: everything but last_seen_at, which lives in the `seen` hash. */
function recordJson(session: SessionRecord): string {
  return JSON.stringify({
    sessionId: session.sessionId,
    userId: session.userId,
    clientType: session.clientType,
    nodeId: session.nodeId,
    connectedAtMs: session.connectedAtMs,
    remoteAddress: session.remoteAddress,
    userAgent: session.userAgent,
  });
}

function parseRecord(json: string, lastSeen: string | null | undefined): SessionRecord {
  const stored = JSON.parse(json) as Omit<SessionRecord, 'lastSeenAtMs'>;
  const seen = Number(lastSeen);
  return { ...stored, lastSeenAtMs: lastSeen !== null && lastSeen !== undefined && lastSeen !== '' && seen > 0 ? seen : stored.connectedAtMs };
}

function parseRecords(records: readonly Reply[], seen: readonly Reply[]): SessionRecord[] {
  const found: SessionRecord[] = [];
  records.forEach((json, i) => {
    // A session removed between the two reads of one script cannot happen; a null here is a set
    // member without a record, left by an interrupted write: skip it.
    if (typeof json === 'string') found.push(parseRecord(json, seen[i] as string | null));
  });
  return found;
}

function fieldOf([, fields]: StreamEntry, name: string): string {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1]!;
  return '';
}

function parseEvent(entry: StreamEntry, cursor: string): PresenceEvent {
  const value = (name: string): string => fieldOf(entry, name);
  return {
    kind: value('k') as PresenceKind,
    userId: value('u'),
    session: parseRecord(value('s'), value('l')),
    reason: value('r'),
    atMs: Number(value('t')),
    sessionCount: Number(value('c')),
    cursor,
  };
}

/** Applies refreshes not yet flushed, so a node reads its own writes. */
function withTouches(sessions: SessionRecord[], pending: readonly ReadonlyMap<string, Touch>[]): SessionRecord[] {
  for (const batch of pending) {
    if (batch.size === 0) continue;
    for (const session of sessions) {
      const touch = batch.get(session.sessionId);
      if (touch !== undefined && touch.userId === session.userId && touch.atMs > session.lastSeenAtMs) session.lastSeenAtMs = touch.atMs;
    }
  }
  return sessions;
}

function byConnection(a: SessionRecord, b: SessionRecord): number {
  return a.connectedAtMs - b.connectedAtMs || (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0);
}
