import { randomBytes } from 'node:crypto';
import { ExpiryHeap, type HeapItem } from '../domain/expiry-heap.js';
import type { MessageReceipt, NewReceiptEvent, ReceiptChange, ReceiptEvent, ReceiptListener, ReceiptStore } from '../domain/receipts.js';
import { PushgateError } from '../errors.js';
import { fixedJson, makeReceipt, removalJson, sessionJson } from './receipt-records.js';

export interface MemoryReceiptOptions {
  /** At most this many receipts on the node; past it, those due to leave first are dropped (default 100,000). */
  readonly maxReceipts?: number;
  /** At most this many events kept for `readAfter` (default 10,000)… */
  readonly retention?: number;
  /** …and none older than this many milliseconds (default 600,000). */
  readonly retentionMs?: number;
  /** Told of each error a listener throws; the other listeners are still called. */
  readonly onListenerError?: (err: unknown) => void;
}

/** A kept receipt: its parts as text (see receipt-records.ts), so every read hands out a fresh copy. */
interface Kept extends HeapItem {
  /** When the receipt leaves the store (its retention), epoch ms. */
  readonly expiresAtMs: number;
  readonly messageId: string;
  readonly fixed: string;
  stored: boolean;
  messageExpiresAtMs: number;
  removed: string | undefined;
  /** Session id → session JSON; Map order is the order first sent, and a replaced entry keeps its place. */
  readonly sessions: Map<string, string>;
}

/** `<epoch>-<seq>`: the epoch is 16 hex digits, the seq a canonical decimal within the safe integers. */
const CURSOR = /^([0-9a-f]{16})-(0|[1-9][0-9]{0,14})$/;

/**
 * The single-node receipt store. Receipts live in a Map by message id and leave at their retention,
 * checked whenever the store is written or read (a heap by expiry: no timer per receipt), and the
 * node keeps at most `maxReceipts`. Events are numbered 1, 2, 3… in a ring of `retention` slots
 * (event `seq` in slot `seq % retention`), dropped past `retentionMs` on every write and read. A
 * cursor is `<epoch>-<seq>`, the position after event `seq`; the epoch is random per instance, so a
 * restarted node refuses cursors from its previous life (`cursor_expired`) rather than misread
 * them. Everything is lost on restart.
 */
export class MemoryReceiptStore implements ReceiptStore {
  private readonly receipts = new Map<string, Kept>();
  private readonly due = new ExpiryHeap<Kept>();
  private readonly maxReceipts: number;
  private readonly retention: number;
  private readonly retentionMs: number;
  private readonly onListenerError: (err: unknown) => void;
  private readonly listeners = new Set<ReceiptListener>();
  private readonly epoch = randomBytes(8).toString('hex');
  /** The ring, by slot: the events (undefined once dropped) and when each was appended, epoch ms. */
  private readonly ring: (ReceiptEvent | undefined)[] = [];
  private readonly appendedAtMs: number[] = [];
  /** Seq of the newest event; 0 before any. */
  private newestSeq = 0;
  /** Seq of the oldest event still held; `newestSeq + 1` when none is. */
  private oldestSeq = 1;
  /** Orders receipts due at the same ms: the one put first leaves first. */
  private puts = 0;

  constructor(options: MemoryReceiptOptions = {}) {
    this.maxReceipts = options.maxReceipts ?? 100_000;
    this.retention = options.retention ?? 10_000;
    this.retentionMs = options.retentionMs ?? 600_000;
    this.onListenerError = options.onListenerError ?? (() => {});
    if (!Number.isSafeInteger(this.maxReceipts) || this.maxReceipts < 1) {
      throw new RangeError(`maxReceipts must be a positive integer, got ${this.maxReceipts}`);
    }
    if (!Number.isSafeInteger(this.retention) || this.retention < 1 || !(this.retentionMs >= 1)) {
      throw new RangeError(
        `receipt event retention must be at least one event and one millisecond, got ${this.retention}, ${this.retentionMs} ms`,
      );
    }
  }

  /** Receipts kept now (some may be past their retention until the next call). */
  get size(): number {
    return this.receipts.size;
  }

  async put(receipt: MessageReceipt, retentionMs: number): Promise<void> {
    const nowMs = Date.now();
    const sessions = new Map<string, string>();
    for (const session of receipt.sessions) sessions.set(session.sessionId, sessionJson(session));
    const kept: Kept = {
      heapIndex: -1,
      seq: ++this.puts,
      expiresAtMs: nowMs + retentionMs,
      messageId: receipt.messageId,
      fixed: fixedJson(receipt),
      stored: receipt.stored,
      messageExpiresAtMs: receipt.expiresAtMs,
      removed: receipt.removed === undefined ? undefined : removalJson(receipt.removed),
      sessions,
    };
    const old = this.receipts.get(receipt.messageId);
    if (old !== undefined) this.due.remove(old);
    this.receipts.set(receipt.messageId, kept);
    this.due.push(kept);
    this.prune(nowMs);
  }

  async update(messageId: string, change: ReceiptChange, event: NewReceiptEvent | undefined): Promise<void> {
    const nowMs = Date.now();
    this.prune(nowMs);
    const kept = this.receipts.get(messageId);
    if (kept !== undefined) {
      // Encoded first: a session that cannot be stored changes nothing.
      const sessions = (change.sessions ?? []).map((session) => [session.sessionId, sessionJson(session)] as const);
      for (const [sessionId, json] of sessions) kept.sessions.set(sessionId, json);
      if (change.stored !== undefined) kept.stored = change.stored;
      if (change.expiresAtMs !== undefined) kept.messageExpiresAtMs = change.expiresAtMs;
      if (change.removed !== undefined) kept.removed = removalJson(change.removed);
    }
    if (event !== undefined) this.emit(event, nowMs);
  }

  async get(messageId: string): Promise<MessageReceipt | undefined> {
    this.prune(Date.now());
    const kept = this.receipts.get(messageId);
    if (kept === undefined) return undefined;
    return makeReceipt(kept.fixed, kept.stored, kept.messageExpiresAtMs, kept.removed, kept.sessions.values());
  }

  async position(): Promise<string> {
    return this.cursorAt(this.newestSeq);
  }

  async readAfter(cursor: string, limit: number): Promise<ReceiptEvent[]> {
    const { epoch, seq } = this.parse(cursor);
    this.dropOldEvents(Date.now());
    if (epoch === this.epoch && seq > this.newestSeq) {
      throw new PushgateError(
        'invalid_argument',
        `receipt cursor "${cursor}" is ahead of the newest event (${this.cursorAt(this.newestSeq)})`,
      );
    }
    // A reader at `seq` next needs event seq + 1; if that one is gone, it would miss events.
    if (epoch !== this.epoch || seq + 1 < this.oldestSeq) {
      const oldest = this.cursorAt(this.oldestSeq - 1);
      throw new PushgateError(
        'cursor_expired',
        `receipt cursor "${cursor}" is older than the retained receipt events (or from before a restart); the oldest cursor still held is ${oldest}`,
        { details: { oldest_cursor: oldest } },
      );
    }
    const events: ReceiptEvent[] = [];
    const last = Math.min(this.newestSeq, seq + Math.max(0, Math.floor(limit)));
    for (let next = seq + 1; next <= last; next++) events.push(this.ring[next % this.retention]!);
    return events;
  }

  subscribe(listener: ReceiptListener): () => void {
    // A wrapper per call: the same function subscribed twice is told twice and unsubscribed once each.
    const one: ReceiptListener = (event) => listener(event);
    this.listeners.add(one);
    return () => {
      this.listeners.delete(one);
    };
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  /** Appends an event (frozen: every listener and reader shares it) and tells the listeners, in order. */
  private emit(event: NewReceiptEvent, nowMs: number): void {
    const seq = this.newestSeq + 1;
    const appended: ReceiptEvent = Object.freeze({
      cursor: this.cursorAt(seq),
      kind: event.kind,
      messageId: event.messageId,
      userId: event.userId,
      sessionId: event.sessionId,
      clientType: event.clientType,
      atMs: event.atMs,
      replay: event.replay,
    });
    this.ring[seq % this.retention] = appended;
    // Kept for age by when it was appended, not by the caller's `atMs`.
    this.appendedAtMs[seq % this.retention] = nowMs;
    this.newestSeq = seq;
    if (seq - this.oldestSeq + 1 > this.retention) this.oldestSeq = seq - this.retention + 1;
    this.dropOldEvents(nowMs);
    // A copy: a listener subscribed by another one now is not told of an event from before it.
    for (const listener of [...this.listeners]) {
      if (!this.listeners.has(listener)) continue; // unsubscribed by an earlier one
      try {
        listener(appended);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  private dropOldEvents(nowMs: number): void {
    const limitMs = nowMs - this.retentionMs;
    while (this.oldestSeq <= this.newestSeq) {
      const slot = this.oldestSeq % this.retention;
      if (this.appendedAtMs[slot]! > limitMs) break;
      this.ring[slot] = undefined; // let the event go
      this.oldestSeq++;
    }
  }

  /** Drops receipts past their retention, then the soonest due while over `maxReceipts`. */
  private prune(nowMs: number): void {
    for (let next = this.due.peek(); next !== undefined; next = this.due.peek()) {
      if (next.expiresAtMs > nowMs && this.receipts.size <= this.maxReceipts) break;
      this.due.remove(next);
      this.receipts.delete(next.messageId);
    }
  }

  private cursorAt(seq: number): string {
    return `${this.epoch}-${seq}`;
  }

  private parse(cursor: string): { epoch: string; seq: number } {
    const match = CURSOR.exec(cursor);
    if (match === null) throw new PushgateError('invalid_argument', `"${cursor.slice(0, 64)}" is not a receipt cursor`);
    return { epoch: match[1]!, seq: Number(match[2]) };
  }
}
