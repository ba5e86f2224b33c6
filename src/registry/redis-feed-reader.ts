import type { Logger } from 'pino';
import type { PresenceEvent, PresenceListener } from '../domain/presence.js';
import { PushgateError } from '../errors.js';
import type { RedisClient, Reply } from '../redis/client.js';
import { callRedis } from '../redis/errors.js';
import { compareIds, decodeCursor, encodeCursor, type ShardPosition } from './redis-cursor.js';
import type { RegistryKeys } from './redis-keys.js';
import { fieldOf, parseEvent, type StreamEntry } from './redis-records.js';
import type { RegistryScripts } from './registry-scripts.js';

const READ_BLOCK_MS = 5000;
const READ_BATCH = 500;
const READER_RETRY_MS = 250;

interface Subscription {
  /** Per shard: the newest event id of this node's own changes when the listener subscribed. */
  readonly since: readonly string[];
  readonly onGap: ((reason: string) => void) | undefined;
}

/**
 * The presence side of the Redis registry: every change's script appends its events to the
 * shard's stream; this reader follows every shard's stream with blocking reads (one connection per
 * shard) and hands each event to the listeners, so subscribers on any node see the changes of all
 * nodes, per user in order. It also reads the streams' history for `readAfter`.
 */
export class RedisFeedReader {
  /**
   * Each listener with the newest event id, per shard, of this node's own changes when it
   * subscribed: the stream is read a moment behind, and a new listener must not be handed events
   * of changes this node completed before it subscribed.
   */
  private readonly listeners = new Map<PresenceListener, Subscription>();
  /** Per shard: the newest event handed to listeners (its number reveals events trimmed before they were read). */
  private readonly positions: ShardPosition[] = [];
  /** Per shard: the newest event id of a change made through this node. */
  private readonly written: string[] = [];
  private readonly readers: RedisClient[] = [];
  private readonly readLoops: Promise<void>[] = [];
  private closed = false;

  constructor(
    private readonly deps: {
      readonly client: RedisClient;
      readonly scripts: RegistryScripts;
      /** Opens a connection for one shard's blocking stream reads (it must not share the command client). */
      readonly openReader: () => RedisClient;
      readonly keys: RegistryKeys;
      readonly log: Logger;
    },
  ) {}

  /** Reads each shard's feed position and starts following the shards' streams. */
  async start(): Promise<void> {
    const { shards } = this.deps.keys;
    for (let shard = 0; shard < shards; shard++) {
      const position = await this.position(shard);
      this.positions.push(position);
      this.written.push(position.id);
    }
    for (let shard = 0; shard < shards; shard++) {
      const reader = this.deps.openReader();
      this.readers.push(reader);
      this.readLoops.push(this.follow(shard, reader));
    }
  }

  /** The newest position of a shard's feed, read from Redis. */
  async position(shard: number): Promise<ShardPosition> {
    const keys = this.deps.keys.shard(shard);
    const [epoch, id, n] = (await callRedis(() => this.deps.scripts.run('pgPosition', [keys.events, keys.epoch], []))) as [
      string,
      string,
      number,
    ];
    return { epoch, id, n };
  }

  /** The identity of a shard's stream as this node last knew it. */
  epochOf(shard: number): string {
    return this.positions[shard]!.epoch;
  }

  /** Notes the newest event of a change this node made, so listeners subscribing later skip it. */
  wrote(shard: number, eventId: string): void {
    if (eventId !== '' && compareIds(eventId, this.written[shard]!) > 0) this.written[shard] = eventId;
  }

  async readAfter(cursor: string, limit: number): Promise<PresenceEvent[]> {
    const { keys, scripts } = this.deps;
    const from = decodeCursor(cursor, keys.shards);
    const replies = await Promise.all(
      from.map((position, shard) => {
        const { events, epoch } = keys.shard(shard);
        return callRedis(() => scripts.run('pgReadAfter', [events, epoch], [position.epoch, position.id, position.n, limit]));
      }),
    );
    if (replies.some((reply) => (reply as Reply[])[0] === 'expired')) {
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
    const { keys } = this.deps;
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

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    for (const reader of this.readers) reader.disconnect();
    await Promise.all(this.readLoops);
  }

  /**
   * Follows one shard's event stream with blocking reads and hands each event to the listeners.
   * After a connection loss it checks the stream's epoch: a new epoch (Redis lost its data) is
   * read from its start, the same one from where this node left off.
   */
  private async follow(shard: number, reader: RedisClient): Promise<void> {
    const keys = this.deps.keys.shard(shard);
    let recheck = false;
    while (!this.closed) {
      try {
        if (recheck) {
          const current = await this.position(shard);
          if (current.epoch !== this.positions[shard]!.epoch) this.positions[shard] = { epoch: current.epoch, id: '0-0', n: 0 };
          recheck = false;
        }
        const reply = (await reader.xread(
          'COUNT',
          READ_BATCH,
          'BLOCK',
          READ_BLOCK_MS,
          'STREAMS',
          keys.events,
          this.positions[shard]!.id,
        )) as [string, StreamEntry[]][] | null;
        for (const entry of reply?.[0]?.[1] ?? []) this.deliver(shard, entry);
      } catch (err) {
        if (this.closed) return;
        this.deps.log.debug({ err, shard }, 'presence stream read failed; retrying');
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
        this.deps.log.error({ err }, 'presence listener failed');
      }
    }
  }

  /** Events were trimmed before this node read them: every subscription that can tell its reader ends. */
  private lostEvents(shard: number, count: number): void {
    const reason = `this node's presence feed fell ${count} events behind the retained window of shard ${shard} (PUSHGATE_PRESENCE_RETENTION)`;
    this.deps.log.warn({ shard, lost: count }, 'presence events were trimmed before this node read them');
    for (const [listener, { onGap }] of [...this.listeners]) {
      if (onGap === undefined) continue;
      this.listeners.delete(listener);
      onGap(reason);
    }
  }
}
