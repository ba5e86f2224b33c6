import type { Logger } from 'pino';
import type { NewReceiptEvent, ReceiptEvent, ReceiptListener } from '../domain/receipts.js';
import { PushgateError } from '../errors.js';
import type { RedisClient } from '../redis/client.js';
import { callRedis } from '../redis/errors.js';
import { compareIds, cursorExpired, decodeCursor, encodeCursor, type StreamPosition } from './receipt-cursor.js';
import type { ReceiptKeys } from './receipt-keys.js';
import { eventArgs, fieldOf, parseEventEntry, type StreamEntry } from './receipt-records.js';
import type { ReceiptScripts } from './receipt-scripts.js';

const READ_BLOCK_MS = 5000;
const READ_BATCH = 500;
const READER_RETRY_MS = 250;

/** What `registry_unavailable` messages say is unavailable. */
export const WHAT = 'receipt store';

export interface ReceiptFeedOptions {
  readonly client: RedisClient;
  readonly scripts: ReceiptScripts;
  /** Opens the connection for the blocking stream reads (it must not be the command client); the feed closes it. */
  readonly openReader: () => RedisClient;
  readonly keys: ReceiptKeys;
  /** At most this many events are kept… */
  readonly retention: number;
  /** …and none older than this many milliseconds. */
  readonly retentionMs: number;
  readonly log: Logger;
}

/**
 * The events side of the Redis receipt store: one stream for the deployment, appended to by every
 * node's `update`s. One reader per store follows it with blocking reads on its own connection and
 * hands each event to the listeners, so a listener on any node hears every node's events, in
 * stream order. It also reads the stream's history for `readAfter`.
 */
export class ReceiptFeed {
  /**
   * Each listener with the newest event id this store had appended when it subscribed: the stream
   * is read a moment behind, and a new listener must not be told of the events of updates made
   * through this store before it subscribed.
   */
  private readonly listeners = new Map<ReceiptListener, string>();
  /** The newest event handed to listeners (its number reveals events trimmed before they were read). */
  private current: StreamPosition = { epoch: '', id: '0-0', n: 0 };
  /** The newest event id this store appended. */
  private written = '0-0';
  private reader: RedisClient | undefined;
  private loop: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly deps: ReceiptFeedOptions) {}

  /** Reads the stream's position and starts following it. */
  async start(): Promise<void> {
    this.current = await this.position();
    if (compareIds(this.current.id, this.written) > 0) this.written = this.current.id;
    if (this.closed) return;
    this.reader = this.deps.openReader();
    // Its failures surface as failed reads, retried by the loop: the event itself says nothing more.
    this.reader.on('error', (err: Error) => this.deps.log.debug({ err }, 'receipt stream reader connection error'));
    this.loop = this.follow(this.reader);
  }

  /** The newest position of the stream, read from Redis. */
  async position(): Promise<StreamPosition> {
    const { keys, scripts } = this.deps;
    const [epoch, id, n] = (await callRedis(() => scripts.run('receiptsPosition', [keys.events, keys.epoch], []), WHAT)) as [
      string,
      string,
      number,
    ];
    return { epoch, id, n };
  }

  async append(event: NewReceiptEvent): Promise<void> {
    const { keys, scripts, retention, retentionMs } = this.deps;
    const [, id] = (await callRedis(
      () => scripts.run('receiptsAppend', [keys.events, keys.epoch], [retention, retentionMs, ...eventArgs(event)]),
      WHAT,
    )) as [string, string, number];
    if (compareIds(id, this.written) > 0) this.written = id;
  }

  async readAfter(cursor: string, limit: number): Promise<ReceiptEvent[]> {
    const { keys, scripts, retentionMs } = this.deps;
    const from = decodeCursor(cursor);
    const count = Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : 0;
    const [status, epoch, oldestId, oldestN, entries] = (await callRedis(
      () => scripts.run('receiptsReadAfter', [keys.events, keys.epoch], [from.epoch, from.id, from.n, count, retentionMs]),
      WHAT,
    )) as [string, string, string, number, StreamEntry[]];
    if (status === 'expired') throw cursorExpired(cursor, encodeCursor({ epoch, id: oldestId, n: oldestN }));
    if (status === 'ahead') throw new PushgateError('invalid_argument', `receipt cursor "${cursor}" is ahead of the newest event`);
    return entries.map((entry) => parseEventEntry(entry, encodeCursor({ epoch, id: entry[0], n: Number(fieldOf(entry, 'n')) })));
  }

  /**
   * Starts after this store's own newest event. Events of other nodes that the reader has not
   * reached yet are told even if appended a moment before: asking Redis where the stream ends
   * would race with those nodes' appends and could skip an event appended after `subscribe`
   * returned, which is worse than telling one that came just before.
   */
  subscribe(listener: ReceiptListener): () => void {
    // A wrapper per call: the same function subscribed twice is told twice and unsubscribed once each.
    const one: ReceiptListener = (event) => listener(event);
    this.listeners.set(one, this.written);
    return () => {
      this.listeners.delete(one);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.reader?.disconnect();
    await this.loop;
  }

  /**
   * Follows the stream with blocking reads. After a failed read it checks the stream's epoch: a
   * new epoch (Redis lost its data) is read from its start, the same one from where it left off.
   */
  private async follow(reader: RedisClient): Promise<void> {
    const { keys, log } = this.deps;
    let recheck = false;
    while (!this.closed) {
      try {
        if (recheck) {
          const now = await this.position();
          if (now.epoch !== this.current.epoch) this.current = { epoch: now.epoch, id: '0-0', n: 0 };
          recheck = false;
        }
        const reply = (await reader.xread('COUNT', READ_BATCH, 'BLOCK', READ_BLOCK_MS, 'STREAMS', keys.events, this.current.id)) as
          | [string, StreamEntry[]][]
          | null;
        if (this.closed) return;
        for (const entry of reply?.[0]?.[1] ?? []) this.deliver(entry);
      } catch (err) {
        if (this.closed) return;
        log.debug({ err }, 'receipt event stream read failed; retrying');
        recheck = true;
        await new Promise((resolve) => setTimeout(resolve, READER_RETRY_MS));
      }
    }
  }

  private deliver(entry: StreamEntry): void {
    const previous = this.current;
    const n = Number(fieldOf(entry, 'n'));
    this.current = { epoch: previous.epoch, id: entry[0], n };
    if (n > previous.n + 1) {
      this.deps.log.warn({ lost: n - previous.n - 1 }, 'receipt events were trimmed before this node read them');
    }
    if (this.listeners.size === 0) return;
    const event = Object.freeze(parseEventEntry(entry, encodeCursor(this.current)));
    for (const [listener, since] of [...this.listeners]) {
      // Skipped: listeners unsubscribed by an earlier one, and events from before they subscribed.
      if (compareIds(entry[0], since) <= 0 || !this.listeners.has(listener)) continue;
      try {
        listener(event);
      } catch (err) {
        this.deps.log.error({ err }, 'receipt listener failed');
      }
    }
  }
}
