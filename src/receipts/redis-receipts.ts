import type { Logger } from 'pino';
import type { MessageReceipt, NewReceiptEvent, ReceiptChange, ReceiptEvent, ReceiptListener, ReceiptStore } from '../domain/receipts.js';
import type { RedisClient } from '../redis/client.js';
import { callRedis } from '../redis/errors.js';
import { encodeCursor } from './receipt-cursor.js';
import { ReceiptFeed, WHAT } from './receipt-feed.js';
import { ReceiptKeys } from './receipt-keys.js';
import { parseReceiptHash, receiptFields, removalJson, sessionJson } from './receipt-records.js';
import { defineReceiptScripts, type ReceiptScripts } from './receipt-scripts.js';

export interface RedisReceiptOptions {
  /** A command connection (no offline queue, a command timeout); the store defines its scripts on it. The caller closes it. */
  readonly client: RedisClient;
  /** Opens the connection for blocking stream reads (not the command client); the store closes it. */
  readonly openReader: () => RedisClient;
  /** Key prefix of the deployment (see receipt-keys.ts). */
  readonly prefix: string;
  /** At most this many receipt events kept for `readAfter`… */
  readonly retention: number;
  /** …and none older than this many milliseconds. */
  readonly retentionMs: number;
  readonly log: Logger;
}

/**
 * The cluster's receipt store: each receipt a HASH under its own message id's hash tag, expiring
 * with its retention; every event in one stream (receipt-feed.ts). `put` is one script on the
 * receipt's key.
 *
 * `update` is two steps, since the receipt's key and the stream lie in different Redis Cluster
 * slots and no script may touch both: first the receipt's change (one script on its key), then the
 * event (one script on the stream). In that order, a listener that reads the receipt on hearing the
 * event sees the change. If Redis fails between the two, `update` rejects with
 * `registry_unavailable` and the change is kept without its event; running the same update again
 * sets the same fields and appends the event then. (Event first would let a listener read the
 * receipt before its change in normal operation, not only when Redis fails.)
 */
export class RedisReceiptStore implements ReceiptStore {
  private readonly keys: ReceiptKeys;
  private readonly scripts: ReceiptScripts;
  private readonly feed: ReceiptFeed;

  constructor(private readonly options: RedisReceiptOptions) {
    const { client, openReader, prefix, retention, retentionMs, log } = options;
    if (!Number.isSafeInteger(retention) || retention < 1 || !Number.isSafeInteger(retentionMs) || retentionMs < 1) {
      throw new RangeError(`receipt event retention must be at least one event and one millisecond, got ${retention}, ${retentionMs} ms`);
    }
    this.keys = new ReceiptKeys(prefix);
    this.scripts = defineReceiptScripts(client);
    this.feed = new ReceiptFeed({ client, scripts: this.scripts, openReader, keys: this.keys, retention, retentionMs, log });
  }

  /** Reads the events' position and starts following them; call once before subscribing. */
  async start(): Promise<void> {
    await this.feed.start();
  }

  async put(receipt: MessageReceipt, retentionMs: number): Promise<void> {
    const fields = receiptFields(receipt);
    const ttl = Math.max(1, Math.ceil(retentionMs));
    await callRedis(() => this.scripts.run('receiptsPut', [this.keys.receipt(receipt.messageId)], [ttl, ...fields]), WHAT);
  }

  async update(messageId: string, change: ReceiptChange, event: NewReceiptEvent | undefined): Promise<void> {
    const { sessions = [], stored, expiresAtMs, removed } = change;
    if (sessions.length > 0 || stored !== undefined || expiresAtMs !== undefined || removed !== undefined) {
      const args = [
        stored === undefined ? '' : stored ? '1' : '0',
        expiresAtMs === undefined ? '' : String(expiresAtMs),
        removed === undefined ? '' : removalJson(removed),
      ];
      for (const session of sessions) args.push(session.sessionId, sessionJson(session));
      await callRedis(() => this.scripts.run('receiptsUpdate', [this.keys.receipt(messageId)], args), WHAT);
    }
    if (event !== undefined) await this.feed.append(event);
  }

  async get(messageId: string): Promise<MessageReceipt | undefined> {
    const key = this.keys.receipt(messageId);
    const hash = await callRedis(() => this.scripts.observed('receiptsGet', () => this.options.client.hgetall(key)), WHAT);
    return parseReceiptHash(hash);
  }

  async position(): Promise<string> {
    return encodeCursor(await this.feed.position());
  }

  readAfter(cursor: string, limit: number): Promise<ReceiptEvent[]> {
    return this.feed.readAfter(cursor, limit);
  }

  subscribe(listener: ReceiptListener): () => void {
    return this.feed.subscribe(listener);
  }

  /** Stops following the events and closes the reader's connection (the command client is the caller's). */
  async close(): Promise<void> {
    await this.feed.close();
  }
}
