import { ExpiryHeap, type HeapItem } from '../domain/expiry-heap.js';
import {
  type AckResult,
  admitsType,
  type Inbox,
  type InboxLimits,
  type InboxPage,
  type NewStoredMessage,
  type StoredMessage,
  type StoreResult,
} from '../domain/inbox.js';
import { PushgateError } from '../errors.js';
import { inboxFull, keptForm, type MessageFields } from './inbox-messages.js';

export interface MemoryInboxOptions {
  /** Most messages this node keeps for all users together (PUSHGATE_INBOX_MAX_TOTAL_MESSAGES). */
  readonly maxTotalMessages?: number;
}

/** A kept message: fixed fields frozen, data as JSON text (every read parses its own copy). */
interface Entry extends HeapItem {
  readonly fields: MessageFields;
  readonly dataJson: string;
  readonly seq: number;
  attempts: number;
  ackedTypes: readonly string[];
}

/**
 * The one-node inbox: lost on restart, bounded node-wide. Each user's messages are a Map by id,
 * which iterates in insertion order, and so in seq order; seq comes from one node-wide counter, so
 * it never goes back for a user, whatever was removed. Expiry is a heap by expiresAtMs: `expire`
 * takes only what is due, and removing a message takes it out of the heap too.
 */
export class MemoryInbox implements Inbox {
  private readonly users = new Map<string, Map<string, Entry>>();
  private readonly expiries = new ExpiryHeap<Entry>();
  private readonly maxTotal: number;
  private lastSeq = 0;

  constructor(options: MemoryInboxOptions = {}) {
    this.maxTotal = options.maxTotalMessages ?? 100_000;
  }

  /** Messages kept now, expired ones not yet swept included. */
  get size(): number {
    return this.expiries.size;
  }

  async store(message: NewStoredMessage, limits: InboxLimits, nowMs: number): Promise<StoreResult> {
    const { fields, dataJson } = keptForm(message);
    const inbox = this.users.get(message.userId);
    if (inbox?.has(message.messageId)) return { stored: false, dropped: [] };
    const live = inbox === undefined ? [] : [...inbox.values()].filter((entry) => entry.expiresAtMs > nowMs);
    const excess = live.length + 1 - limits.maxMessages;
    if (excess > 0 && (limits.whenFull === 'refuse_new' || limits.maxMessages < 1)) throw inboxFull(message.userId, limits);
    const drop = excess > 0 ? live.slice(0, excess) : [];
    if (this.size - drop.length >= this.maxTotal) {
      throw new PushgateError(
        'inbox_full',
        `this node's offline inboxes already hold ${this.maxTotal} messages (PUSHGATE_INBOX_MAX_TOTAL_MESSAGES)`,
      );
    }
    const dropped = drop.map((entry) => this.take(entry));
    const entry: Entry = {
      fields,
      dataJson,
      seq: ++this.lastSeq,
      expiresAtMs: fields.expiresAtMs,
      heapIndex: -1,
      attempts: message.attempts,
      ackedTypes: Object.freeze([]),
    };
    this.inboxOf(message.userId).set(message.messageId, entry);
    this.expiries.push(entry);
    return { stored: true, dropped };
  }

  async claimForReplay(userId: string, clientType: string, afterSeq: number, limit: number, nowMs: number): Promise<StoredMessage[]> {
    const claimed: StoredMessage[] = [];
    for (const entry of this.users.get(userId)?.values() ?? []) {
      if (claimed.length >= limit) break;
      if (entry.seq <= afterSeq || entry.expiresAtMs <= nowMs) continue;
      if (!admitsType(entry.fields.clientTypes, clientType) || entry.ackedTypes.includes(clientType)) continue;
      entry.attempts++;
      claimed.push(copyOf(entry));
    }
    return claimed;
  }

  async ack(userId: string, messageId: string, clientType: string): Promise<AckResult> {
    const entry = this.users.get(userId)?.get(messageId);
    if (entry === undefined) return 'unknown';
    const { removal, requiredTypes } = entry.fields;
    if (removal === 'each_client_type' && requiredTypes.length > 0) {
      if (!requiredTypes.includes(clientType) || entry.ackedTypes.includes(clientType)) return 'kept';
      entry.ackedTypes = Object.freeze([...entry.ackedTypes, clientType]);
      if (entry.ackedTypes.length < requiredTypes.length) return 'kept';
    }
    this.take(entry);
    return 'removed';
  }

  async list(userId: string, afterSeq: number, limit: number, nowMs: number): Promise<InboxPage> {
    const messages: StoredMessage[] = [];
    let nextAfterSeq: number | undefined;
    for (const entry of this.users.get(userId)?.values() ?? []) {
      if (entry.seq <= afterSeq || entry.expiresAtMs <= nowMs) continue;
      if (messages.length >= limit) {
        nextAfterSeq = messages.at(-1)?.seq ?? afterSeq;
        break;
      }
      messages.push(copyOf(entry));
    }
    return { messages, nextAfterSeq };
  }

  async remove(userId: string, messageIds: readonly string[] | 'all'): Promise<string[]> {
    const inbox = this.users.get(userId);
    if (inbox === undefined) return [];
    const entries = messageIds === 'all' ? [...inbox.values()] : messageIds.map((id) => inbox.get(id));
    const removed: string[] = [];
    for (const entry of entries) {
      // The same id twice in the list finds it gone the second time.
      if (entry !== undefined && entry.heapIndex !== -1) {
        this.take(entry);
        removed.push(entry.fields.messageId);
      }
    }
    return removed;
  }

  async expire(nowMs: number, limit: number): Promise<StoredMessage[]> {
    const expired: StoredMessage[] = [];
    for (let next = this.expiries.peek(); next !== undefined && next.expiresAtMs <= nowMs && expired.length < limit; ) {
      expired.push(this.take(next));
      next = this.expiries.peek();
    }
    return expired;
  }

  async close(): Promise<void> {
    this.users.clear();
    this.expiries.clear();
  }

  private inboxOf(userId: string): Map<string, Entry> {
    let inbox = this.users.get(userId);
    if (inbox === undefined) {
      inbox = new Map();
      this.users.set(userId, inbox);
    }
    return inbox;
  }

  /** Takes a message out of its user's inbox and the heap; returns it as it was. */
  private take(entry: Entry): StoredMessage {
    const { userId, messageId } = entry.fields;
    const inbox = this.users.get(userId);
    inbox?.delete(messageId);
    if (inbox?.size === 0) this.users.delete(userId);
    this.expiries.remove(entry);
    return copyOf(entry);
  }
}

/** A copy the caller may keep or change: the type lists are frozen and shared, the data is parsed anew. */
function copyOf(entry: Entry): StoredMessage {
  return {
    ...entry.fields,
    data: JSON.parse(entry.dataJson) as unknown,
    seq: entry.seq,
    attempts: entry.attempts,
    ackedTypes: entry.ackedTypes,
  };
}
