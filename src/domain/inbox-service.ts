import type { AckResult, Inbox, InboxLimits, InboxPage, NewStoredMessage, StoredMessage } from './inbox.js';
import type { Delivery, Outcome, PushMessage, PushRequest, PushResult } from './push.js';
import type { AckFacts, ReceiptService } from './receipt-service.js';
import type { SessionRecord } from './session.js';

export interface InboxServiceDeps {
  readonly inbox: Inbox;
  /** PUSHGATE_INBOX_MAX_MESSAGES, _FULL_POLICY and _REPLAY_BATCH (stored messages read per replay step). */
  readonly settings: { readonly maxMessagesPerUser: number; readonly whenFull: InboxLimits['whenFull']; readonly replayBatch: number };
  /** Every client type the server accepts: the types that must each ack an `each_client_type` message pushed without a filter. */
  readonly clientTypes: readonly string[];
  /** Ack wait of a replayed message (PUSHGATE_ACK_TIMEOUT_MS). */
  readonly replayAckTimeoutMs: number;
  readonly observer?: InboxObserver;
  /** Told of every change to a stored message (receipts and their events); none in some unit tests. */
  readonly receipts?: ReceiptService;
  readonly now?: () => number;
}

/** Told what the inbox does (metrics, logs); it must not throw. */
export interface InboxObserver {
  stored(count: number): void;
  /** Messages dropped to make room in a full inbox (`drop_oldest`). */
  dropped(messages: readonly StoredMessage[]): void;
  replayed(count: number): void;
  /** Messages that expired unacked. */
  expired(messages: readonly StoredMessage[]): void;
  /** A stored-message ack or a replay could not reach the inbox (e.g. Redis down): it is replayed again later. */
  failed(what: 'ack' | 'expire' | 'receipt', err: unknown): void;
}

/** A session being replayed to, as the edge presents it. */
export interface ReplayTarget {
  /** The session's registry record: its user, client type, node. */
  readonly session: SessionRecord;
  /**
   * Sends one stored message to the session ahead of any live push, and resolves with its
   * outcome (acked, timeout, disconnected). Sends happen in call order.
   */
  send(message: PushMessage): Promise<Outcome>;
  /** True when a live push with this id is already on its way to the session (do not replay it too). */
  hasLive(messageId: string): boolean;
  /** False once the session closed: the replay stops. */
  readonly open: boolean;
}

/**
 * The offline inbox's rules over its storage port: which pushes are kept and when they leave, how
 * a connecting session is replayed to, and the inbox's management calls.
 */
export class InboxService {
  private readonly now: () => number;
  private readonly limits: InboxLimits;
  private expiryTimer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly deps: InboxServiceDeps) {
    this.now = deps.now ?? Date.now;
    this.limits = { maxMessages: deps.settings.maxMessagesPerUser, whenFull: deps.settings.whenFull };
  }

  /**
   * STORE mode, before the push is sent to `sessions` sessions: the message is kept whatever
   * happens next, with those sends counted as attempts (a replay is then attempt sessions + 1).
   */
  async keepBeforeSend(request: PushRequest, sessions: number): Promise<void> {
    await this.keep(request, sessions);
  }

  /**
   * After the live fan-out of a storing push: STORE_IF_UNACKED keeps it when no session acked it;
   * STORE removes it with the live acks, as its removal policy says. Returns the result with
   * `stored` telling whether the message is in the inbox now.
   */
  async settle(request: PushRequest, result: PushResult): Promise<PushResult> {
    const storage = request.storage;
    if (storage === undefined) return result;
    if (storage.mode === 'store_if_unacked') {
      if (result.acked > 0) return result;
      const sent = result.deliveries.filter(wasSent).length;
      await this.keep(request, sent);
      return { ...result, stored: true };
    }
    let ack: AckResult | undefined;
    for (const delivery of result.deliveries) {
      if (delivery.status !== 'acked') continue;
      ack = await this.deps.inbox.ack(request.userId, request.messageId, delivery.session.clientType);
      if (ack !== 'kept') break;
    }
    if (ack === 'removed') await this.recorded(this.deps.receipts?.left(request.messageId, request.userId, 'acked'));
    // `unknown` after an ack: removed meanwhile (another session's replay ack, DeleteInbox, expiry).
    return { ...result, stored: ack === undefined || ack === 'kept' };
  }

  /**
   * Replays the stored messages meant for a session that just connected: every message its client
   * type should get, in push order, including messages stored while the replay runs. Acks remove
   * them as they arrive; a message the session does not ack stays for its next connection.
   * Resolves with how many were sent, once the last one is sent (not acked).
   */
  async replay(target: ReplayTarget): Promise<number> {
    const { inbox, replayAckTimeoutMs } = this.deps;
    const { replayBatch } = this.deps.settings;
    let afterSeq = 0;
    let sent = 0;
    while (target.open) {
      const { userId, clientType } = target.session;
      const batch = await inbox.claimForReplay(userId, clientType, afterSeq, replayBatch, this.now());
      if (batch.length === 0) break;
      afterSeq = batch[batch.length - 1]!.seq;
      for (const message of batch) {
        if (!target.open) break;
        if (target.hasLive(message.messageId)) continue;
        sent++;
        const outcome = target.send({
          event: message.event,
          data: message.data,
          ackTimeoutMs: replayAckTimeoutMs,
          noAck: false,
          messageId: message.messageId,
          sentAtMs: message.sentAtMs,
          replay: true,
          attempt: message.attempts,
        });
        void outcome.then((result) => {
          if (result.status !== 'acked') return;
          const ack = { ackData: result.ackData, latencyUs: result.latencyUs, replay: true, attempt: message.attempts };
          this.acked(target.session, message.messageId, ack).catch((err: unknown) => this.deps.observer?.failed('ack', err));
        });
      }
    }
    if (sent > 0) this.deps.observer?.replayed(sent);
    return sent;
  }

  list(userId: string, afterSeq: number, limit: number): Promise<InboxPage> {
    return this.deps.inbox.list(userId, afterSeq, limit, this.now());
  }

  async remove(userId: string, messageIds: readonly string[] | 'all'): Promise<string[]> {
    const removed = await this.deps.inbox.remove(userId, messageIds);
    await this.recorded(...removed.map((messageId) => this.deps.receipts?.left(messageId, userId, 'deleted')));
    return removed;
  }

  /** Removes messages that expired unacked (up to `limit`); resolves with how many. */
  async expire(limit: number): Promise<number> {
    const expired = await this.deps.inbox.expire(this.now(), limit);
    if (expired.length > 0) this.deps.observer?.expired(expired);
    await this.recorded(...expired.map((message) => this.deps.receipts?.left(message.messageId, message.userId, 'expired')));
    return expired.length;
  }

  /**
   * A session acked a tracked message after its wait ended (a late ack, on the node holding the
   * session): the receipt records it, and a stored copy leaves the inbox as its policy says.
   */
  lateAck(session: SessionRecord, message: PushMessage, ackData: unknown, latencyUs: number): void {
    const ack = { ackData, latencyUs, replay: message.replay === true, attempt: message.attempt ?? 1 };
    this.acked(session, message.messageId, ack).catch((err: unknown) => this.deps.observer?.failed('ack', err));
  }

  private async acked(session: SessionRecord, messageId: string, ack: AckFacts): Promise<void> {
    const removed = (await this.deps.inbox.ack(session.userId, messageId, session.clientType)) === 'removed';
    const receipts = this.deps.receipts;
    if (receipts === undefined) return;
    await receipts.acked(messageId, session, ack);
    if (removed) await receipts.left(messageId, session.userId, 'acked');
  }

  /**
   * Waits for receipt updates so that a GetMessage after the call that caused them reads them (a
   * caller deleting a message and then reading its receipt saw it still stored). Receipt
   * bookkeeping never fails what it describes: a failed update is reported (metrics, log), not thrown.
   */
  private async recorded(...updates: (Promise<void> | undefined)[]): Promise<void> {
    const results = await Promise.allSettled(updates);
    for (const result of results) if (result.status === 'rejected') this.deps.observer?.failed('receipt', result.reason);
  }

  /**
   * Sweeps expired messages every `intervalMs` (a sweep that finds a full batch goes on at once),
   * until `close`. One interval for the node's life: a failed sweep (Redis down) is reported and
   * tried again on the next tick; expired messages are never replayed meanwhile, since every read
   * skips them.
   */
  startExpiry(intervalMs = 1000, limit = 1000): void {
    let sweeping = false;
    this.expiryTimer = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      this.sweep(limit)
        .catch((err: unknown) => this.deps.observer?.failed('expire', err))
        .finally(() => {
          sweeping = false;
        });
    }, intervalMs);
    this.expiryTimer.unref?.();
  }

  /** Stops the expiry sweeps; the storage stays open (the app closes it). */
  close(): void {
    clearInterval(this.expiryTimer);
  }

  private async sweep(limit: number): Promise<void> {
    while ((await this.expire(limit)) === limit) {}
  }

  private async keep(request: PushRequest, attempts: number): Promise<void> {
    const storage = request.storage!;
    const now = this.now();
    const message: NewStoredMessage = {
      messageId: request.messageId,
      userId: request.userId,
      event: request.event,
      data: request.data,
      clientTypes: request.clientTypes,
      removal: storage.removal,
      requiredTypes: request.clientTypes.length > 0 ? request.clientTypes : this.deps.clientTypes,
      sentAtMs: request.sentAtMs,
      // From the push's time, so the receipt and every node agree on it.
      expiresAtMs: request.sentAtMs + storage.ttlMs,
      attempts,
    };
    const { stored, dropped } = await this.deps.inbox.store(message, this.limits, now);
    if (stored) this.deps.observer?.stored(1);
    if (dropped.length > 0) this.deps.observer?.dropped(dropped);
    const receipts = this.deps.receipts;
    if (receipts === undefined) return;
    // Issued in the order they happened (room was made, then the message kept), on one connection.
    const updates = dropped.map((old) => receipts.left(old.messageId, old.userId, 'dropped'));
    if (stored) updates.push(receipts.stored(message.messageId, message.userId, message.expiresAtMs));
    await this.recorded(...updates);
  }
}

/**
 * Whether the client may have received it. A failed delivery counts too: a node that died or did
 * not answer may have sent it first, and an attempt counted too many only tells a client to
 * check for a duplicate, while one too few would hide one.
 */
function wasSent(delivery: Delivery): boolean {
  return delivery.status === 'timeout' || delivery.status === 'disconnected' || delivery.status === 'failed';
}
