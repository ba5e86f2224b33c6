import type { Socket } from 'socket.io';
import type { Cancellation } from '../domain/cancellation.js';
import { type Outcome, outcome, type PushMessage } from '../domain/push.js';
import type { SessionRecord } from '../domain/session.js';
import type { SessionTransport } from '../domain/session-transport.js';
import type { AckLimits } from './ack-bounds.js';
import { type AckTarget, AckWait, type AckWaitContext, GONE } from './ack-wait.js';
import { ClientBacklog } from './client-backlog.js';

/**
 * A socket this node holds, and the pushes awaiting its ack, told at once when it closes. An idle
 * session is most of what a node holds, so what only some sessions ever need (a set of
 * overlapping waits, the backlog count) is made on first use.
 */
export class LocalSession implements AckTarget {
  /** Set by the server before it closes the socket, so presence reports why. */
  closeReason: string | undefined = undefined;
  /** Settles when the session is in the registry; undefined once it is. */
  registered: Promise<unknown> | undefined = undefined;
  /** Settles when the session has left the registry after its socket closed. */
  unregistered: Promise<unknown> | undefined = undefined;
  /** Place in the node's token-expiry clock (token-expiry.ts); -1 while not watched. */
  expiryIndex = -1;
  /** The client asked for metadata at its handshake: pushes arrive as (data, meta, ack). */
  meta = false;
  /** While its stored messages are replayed: live pushes wait here, in order, then go out. */
  private held: HeldPush[] | undefined = undefined;
  // The pushes awaiting this session's ack: mostly none or one, so a field, and a Set only while
  // several overlap (a Set that empties has its table reallocated by V8, on every push).
  private wait: AckWait | undefined = undefined;
  private moreWaits: Set<AckWait> | undefined = undefined;
  private clientBacklog: ClientBacklog | undefined = undefined;
  /** Ack ids of tracked pushes whose wait ended unanswered, kept for a late ack (oldest first). */
  private lateAckIds: number[] | undefined = undefined;

  constructor(
    readonly socket: Socket,
    readonly record: SessionRecord,
  ) {}

  addWait(wait: AckWait): void {
    if (this.wait === undefined) this.wait = wait;
    else {
      this.moreWaits ??= new Set();
      this.moreWaits.add(wait);
    }
  }

  removeWait(wait: AckWait): void {
    if (this.wait === wait) this.wait = undefined;
    else this.moreWaits?.delete(wait);
  }

  /** Pushes awaiting this session's ack. */
  get pendingWaits(): number {
    return (this.wait === undefined ? 0 : 1) + (this.moreWaits?.size ?? 0);
  }

  /** What is queued on this node for the client (slow-consumer check). */
  get backlog(): ClientBacklog {
    this.clientBacklog ??= ClientBacklog.of(this.socket);
    return this.clientBacklog;
  }

  /** Live pushes wait from now until `releaseLive`: the replay of stored messages goes first. */
  holdLive(): void {
    this.held ??= [];
  }

  /** Sends the held live pushes, in the order they came. */
  releaseLive(): void {
    const held = this.held;
    this.held = undefined;
    if (held !== undefined) for (const push of held) push.send();
  }

  /** Whether a live push must wait (`hold` it) instead of being sent now. */
  get holding(): boolean {
    return this.held !== undefined;
  }

  hold(messageId: string, send: () => void): void {
    this.held!.push({ messageId, send });
  }

  /** Whether a live push of this message is waiting for the replay to end. */
  holds(messageId: string): boolean {
    return this.held?.some((push) => push.messageId === messageId) ?? false;
  }

  /** Emits a push on the socket: with its metadata when the client asked for it. */
  emit(message: PushMessage, ack?: (ackData: unknown) => void): void {
    const { socket } = this;
    if (!this.meta) {
      if (ack === undefined) socket.emit(message.event, message.data);
      else socket.emit(message.event, message.data, ack);
      return;
    }
    const meta = { messageId: message.messageId, sentAt: message.sentAtMs, replay: message.replay === true, attempt: message.attempt ?? 1 };
    if (ack === undefined) socket.emit(message.event, message.data, meta);
    else socket.emit(message.event, message.data, meta, ack);
  }

  keepForLateAck(ackId: number): void {
    this.lateAckIds ??= [];
    this.lateAckIds.push(ackId);
    // A client that never answers must not grow Socket.IO's ack table without bound.
    if (this.lateAckIds.length > MAX_LATE_ACKS) (this.socket as unknown as SocketAcks).acks.delete(this.lateAckIds.shift()!);
  }

  lateAckArrived(ackId: number): void {
    const ids = this.lateAckIds;
    const i = ids?.indexOf(ackId) ?? -1;
    if (i >= 0) ids!.splice(i, 1);
  }

  /** Tells every push still awaiting this session's ack that it closed. */
  closed(): void {
    const waits = [this.wait, ...(this.moreWaits ?? [])];
    this.wait = undefined;
    this.moreWaits = undefined;
    for (const wait of waits) wait?.disconnected(this);
  }
}

/** Late acks of tracked pushes one session may still owe; past this the oldest is forgotten. */
const MAX_LATE_ACKS = 64;

interface SocketAcks {
  readonly acks: Map<number, unknown>;
}

/** Records an ack of a tracked push that came after its wait ended (app: the inbox and receipts). */
export type LateAckHandler = (session: SessionRecord, message: PushMessage, ackData: unknown, latencyUs: number) => void;

interface HeldPush {
  readonly messageId: string;
  readonly send: () => void;
}

export interface LocalSessionLimits extends AckLimits {
  /** PUSHGATE_MAX_CLIENT_BUFFER_BYTES. */
  readonly maxClientBufferBytes: number;
}

/** Used where no configuration is at hand (unit tests): the settings' defaults. */
export const DEFAULT_LOCAL_SESSION_LIMITS: LocalSessionLimits = Object.freeze({
  maxClientBufferBytes: 4 * 1024 * 1024,
  maxAckBytes: 16 * 1024,
  maxAckDepth: 32,
});

/**
 * The sockets this node holds, by session id, and the local delivery of pushes to them: one emit
 * per session, one timer per push, results collected per session (see AckWait).
 */
export class LocalSessions implements SessionTransport {
  private readonly sessions = new Map<string, LocalSession>();
  private readonly waitContext: AckWaitContext;
  private lateAcks: LateAckHandler | undefined;

  constructor(private readonly limits: LocalSessionLimits = DEFAULT_LOCAL_SESSION_LIMITS) {
    this.waitContext = {
      index: this.sessions,
      ackLimits: limits,
      refuseSlow: (target) => this.refuseSlow(target as LocalSession),
      lateAck: (target, message, ackData, latencyUs) => this.lateAcks?.((target as LocalSession).record, message, ackData, latencyUs),
    };
  }

  /** Where acks of tracked pushes that come after their wait go (set once by the app). */
  onLateAck(handler: LateAckHandler): void {
    this.lateAcks = handler;
  }

  add(socket: Socket, record: SessionRecord): LocalSession {
    const entry = new LocalSession(socket, record);
    this.sessions.set(record.sessionId, entry);
    return entry;
  }

  /** Forgets a closed socket; pushes still waiting for it report DISCONNECTED now, not at their timeout. */
  remove(sessionId: string): void {
    const entry = this.sessions.get(sessionId);
    if (entry === undefined) return;
    this.sessions.delete(sessionId);
    entry.closed();
  }

  get(sessionId: string): LocalSession | undefined {
    return this.sessions.get(sessionId);
  }

  all(): IterableIterator<LocalSession> {
    return this.sessions.values();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Pushes still waiting for acks across all sessions: zero when nothing is in flight. */
  pendingWaits(): number {
    let count = 0;
    for (const entry of this.sessions.values()) count += entry.pendingWaits;
    return count;
  }

  deliver(
    sessionIds: readonly string[],
    message: PushMessage,
    signal: Cancellation,
    onOutcome?: (index: number, outcome: Outcome) => void,
  ): Promise<Outcome[]> {
    if (message.noAck) return Promise.resolve(sessionIds.map((id) => this.send(id, message)));
    return new Promise((resolve) => new AckWait(this.waitContext, sessionIds, message, signal, resolve, onOutcome));
  }

  private send(sessionId: string, message: PushMessage): Outcome {
    const entry = this.sessions.get(sessionId);
    if (entry === undefined || !entry.socket.connected) return outcome('disconnected', GONE);
    const slow = this.refuseSlow(entry);
    if (slow !== undefined) return slow;
    if (entry.holding) entry.hold(message.messageId, () => entry.emit(message));
    else entry.emit(message);
    return outcome('sent');
  }

  /**
   * A client that stopped reading (or reads slower than it is sent to) would make its queue, and
   * this node's memory, grow with every push. Past the limit, the push to it fails and its
   * connection is dropped at once with everything queued: presence reports `slow_consumer`. The
   * close runs on the next tick, outside the delivery loop that found it.
   */
  private refuseSlow(entry: LocalSession): Outcome | undefined {
    const queued = entry.backlog.bytes;
    if (queued <= this.limits.maxClientBufferBytes && entry.closeReason !== 'slow_consumer') return undefined;
    if (entry.closeReason === undefined) {
      entry.closeReason = 'slow_consumer';
      process.nextTick(() => {
        entry.socket.disconnect(true);
        entry.backlog.destroy();
      });
    }
    return outcome(
      'failed',
      `slow_consumer: the client is not reading fast enough (${queued} bytes already queued for it, over PUSHGATE_MAX_CLIENT_BUFFER_BYTES ${this.limits.maxClientBufferBytes}); its socket is closed`,
    );
  }
}
