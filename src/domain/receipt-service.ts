import { Cancel, type Cancellation } from './cancellation.js';
import type { Delivery, PushRequest, PushResult } from './push.js';
import { type ReceiptWatchRequest, watchReceipts } from './receipt-watch.js';
import type { MessageReceipt, NewReceiptEvent, ReceiptEvent, ReceiptStore, RemovalReason, SessionReceipt } from './receipts.js';
import type { SessionRecord } from './session.js';

export interface ReceiptServiceDeps {
  readonly store: ReceiptStore;
  /** PUSHGATE_RECEIPT_RETENTION_S, in ms: a receipt is kept this long after the push (plus a stored message's TTL). */
  readonly retentionMs: number;
  readonly now?: () => number;
}

/** What a receipt says about the session an ack came from. */
export type AckingSession = Pick<SessionRecord, 'sessionId' | 'clientType' | 'nodeId' | 'userId'>;

/** A session's ack, as a receipt records it. */
export interface AckFacts {
  readonly ackData: unknown;
  readonly latencyUs: number;
  readonly replay: boolean;
  readonly attempt: number;
}

/**
 * Keeps each tracked message's receipt up to date: opened when the push starts, each session's
 * outcome when known, acks that come after the call returned, the inbox's changes; and appends the
 * receipt events WatchReceipts streams (acks after the call returned, stored, expired, dropped,
 * deleted). Acks the caller already had in its reply are in the receipt but are not events.
 */
export class ReceiptService {
  private readonly now: () => number;
  private readonly watches = new Set<Cancel>();

  constructor(private readonly deps: ReceiptServiceDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Whether a push gets a receipt: its reply is not the whole story, or its caller may ask again by id. */
  static tracks(request: PushRequest): boolean {
    return (
      request.callerMessageId === true || request.storage !== undefined || (request.waitFor !== undefined && request.waitFor !== 'all')
    );
  }

  /**
   * The push starts: an empty receipt, so every later change (even a racing replay's ack) lands on
   * it; or, given `result`, the whole receipt of a push that had nothing else going on.
   */
  opened(request: PushRequest, result?: PushResult): Promise<void> {
    const storage = request.storage;
    const receipt: MessageReceipt = {
      messageId: request.messageId,
      userId: request.userId,
      event: request.event,
      sentAtMs: request.sentAtMs,
      mode: storage?.mode ?? 'live',
      stored: false,
      expiresAtMs: 0,
      removed: undefined,
      sessions: result === undefined ? [] : result.deliveries.map((d) => sessionReceipt(d, this.now())),
    };
    return this.deps.store.put(receipt, this.deps.retentionMs + (storage?.ttlMs ?? 0));
  }

  /** The sessions' outcomes as the call saw them (PENDING ones are settled later by `settled`). */
  async delivered(result: PushResult): Promise<void> {
    if (result.deliveries.length === 0) return;
    const at = this.now();
    await this.deps.store.update(result.messageId, { sessions: result.deliveries.map((d) => sessionReceipt(d, at)) }, undefined);
  }

  /**
   * The outcomes of sessions the call reported PENDING (wait_for ANY or NONE), once known: each
   * ack among them is an event, since the caller has not seen it.
   */
  async settled(early: PushResult, final: PushResult): Promise<void> {
    const at = this.now();
    const changed = final.deliveries.filter((_d, i) => early.deliveries[i]?.status === 'pending');
    if (changed.length === 0) return;
    await this.deps.store.update(final.messageId, { sessions: changed.map((d) => sessionReceipt(d, at)) }, undefined);
    for (const delivery of changed) {
      if (delivery.status !== 'acked') continue;
      await this.deps.store.update(final.messageId, {}, this.event('acked', final.messageId, delivery.session, at, false));
    }
  }

  /** A session acked after its wait ended (a late ack), or acked a replay. */
  acked(messageId: string, session: AckingSession, ack: AckFacts): Promise<void> {
    const at = this.now();
    const entry: SessionReceipt = {
      sessionId: session.sessionId,
      clientType: session.clientType,
      nodeId: session.nodeId,
      status: 'acked',
      atMs: at,
      latencyUs: ack.latencyUs,
      ackData: ack.ackData,
      error: '',
      replay: ack.replay,
      attempt: ack.attempt,
    };
    return this.deps.store.update(messageId, { sessions: [entry] }, this.event('acked', messageId, session, at, ack.replay));
  }

  /** The message was kept in the user's inbox. */
  stored(messageId: string, userId: string, expiresAtMs: number): Promise<void> {
    const at = this.now();
    return this.deps.store.update(messageId, { stored: true, expiresAtMs }, this.event('stored', messageId, { userId }, at, false));
  }

  /** The message left the inbox; an ack's removal is no event of its own (the ack was one, or was in the reply). */
  left(messageId: string, userId: string, reason: RemovalReason): Promise<void> {
    const at = this.now();
    const event = reason === 'acked' ? undefined : this.event(reason, messageId, { userId }, at, false);
    return this.deps.store.update(messageId, { stored: false, removed: { reason, atMs: at } }, event);
  }

  get(messageId: string): Promise<MessageReceipt | undefined> {
    return this.deps.store.get(messageId);
  }

  /** Receipt events as they happen (after `resumeAfter`, if given), for a WatchReceipts stream; `endAll` ends it. */
  async *watch(request: ReceiptWatchRequest, signal: Cancellation): AsyncGenerator<ReceiptEvent, void, undefined> {
    const finish = new Cancel();
    this.watches.add(finish);
    try {
      yield* watchReceipts(this.deps.store, request, signal, finish);
    } finally {
      this.watches.delete(finish);
    }
  }

  /** Open WatchReceipts streams on this node. */
  get watchCount(): number {
    return this.watches.size;
  }

  /** Ends every receipt stream (shutdown): each reader gets what was queued for it, then the end, and resumes elsewhere. */
  endAll(): void {
    for (const finish of this.watches) finish.abort();
  }

  private event(
    kind: NewReceiptEvent['kind'],
    messageId: string,
    session: Partial<AckingSession> & { readonly userId: string },
    atMs: number,
    replay: boolean,
  ): NewReceiptEvent {
    return {
      kind,
      messageId,
      userId: session.userId,
      sessionId: session.sessionId ?? '',
      clientType: session.clientType ?? '',
      atMs,
      replay,
    };
  }
}

function sessionReceipt(delivery: Delivery, atMs: number): SessionReceipt {
  const { session } = delivery;
  return {
    sessionId: session.sessionId,
    clientType: session.clientType,
    nodeId: session.nodeId,
    status: delivery.status,
    atMs,
    latencyUs: delivery.latencyUs,
    ackData: delivery.ackData,
    error: delivery.error,
    replay: false,
    attempt: 1,
  };
}
