import { performance } from 'node:perf_hooks';
import type { Socket } from 'socket.io';
import type { Cancellation } from '../domain/cancellation.js';
import { type DeliveryStatus, type Outcome, outcome, type PushMessage } from '../domain/push.js';
import { type AckLimits, checkAck } from './ack-bounds.js';

export const GONE = 'session closed before the push reached it';
const CLOSED_WHILE_AWAITED = 'session closed before it acked';

// Socket.IO keeps an ack callback in `socket.acks` until the client answers or the socket closes.
// A client that never answers would otherwise grow that map with every push, so a finished wait
// removes its callbacks by the id Socket.IO assigns: the namespace counter read just before emit.
interface SocketAckInternals {
  readonly acks: Map<number, unknown>;
  readonly nsp: { _ids: number };
}

/** A session as a wait sees it: its socket, and the waits it must tell when it closes. */
export interface AckTarget {
  readonly socket: Socket;
  /** While true, a live push is `hold`ed until the session's replay of stored messages ends. */
  readonly holding: boolean;
  hold(messageId: string, send: () => void): void;
  /** Emits the push (with metadata when the client asked for it). */
  emit(message: PushMessage, ack: (ackData: unknown) => void): void;
  /**
   * Keeps the unanswered ack callback `ackId` in Socket.IO's table for a late ack, within a bound
   * per session (the oldest kept one is dropped past it); forget it with `lateAckArrived`.
   */
  keepForLateAck(ackId: number): void;
  lateAckArrived(ackId: number): void;
  /** Tells `wait` when this session closes, until removeWait. */
  addWait(wait: AckWait): void;
  removeWait(wait: AckWait): void;
}

/** What a wait needs from the sessions' owner: the index, the ack bounds, and the slow-consumer gate. */
export interface AckWaitContext {
  /**
   * Told of an ack that comes after its wait ended (timeout, cancelled call) for a tracked message
   * (one with a receipt): the receipt records it. Such an ack callback is kept by the session
   * (`keepForLateAck`) instead of being dropped.
   */
  readonly lateAck?: (target: AckTarget, message: PushMessage, ackData: unknown, latencyUs: number) => void;
  readonly index: ReadonlyMap<string, AckTarget>;
  readonly ackLimits: AckLimits;
  /**
   * Called before each emit: an outcome (FAILED, slow_consumer) when the session's connection
   * already has too much queued to take the push, undefined when it may be sent.
   */
  readonly refuseSlow: (target: AckTarget) => Outcome | undefined;
}

/** One push awaiting acks from several local sessions. Owns its timer and its abort listener. */
export class AckWait {
  private readonly outcomes: Outcome[];
  /** Per session: its entry while its ack is awaited, undefined once settled. */
  private readonly awaiting: (AckTarget | undefined)[];
  private readonly ackIds: number[];
  private readonly emittedAt: number[];
  private remaining = 0;
  /** Per session, for a tracked message: its entry while a late ack is still awaited (made on first use). */
  private late: (AckTarget | undefined)[] | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly message: PushMessage;
  private readonly onAbort = (): void => this.finish('failed', 'call cancelled or its deadline passed before the ack');

  constructor(
    private readonly context: AckWaitContext,
    sessionIds: readonly string[],
    message: PushMessage,
    private readonly signal: Cancellation,
    private readonly resolve: (outcomes: Outcome[]) => void,
    /** Told of each awaited session as it settles (a batch reports users early); the others come with `resolve`. */
    private readonly onOutcome?: (index: number, outcome: Outcome) => void,
  ) {
    const count = sessionIds.length;
    this.message = message;
    this.outcomes = new Array(count);
    this.awaiting = new Array(count);
    this.ackIds = new Array(count);
    this.emittedAt = new Array(count);
    for (let i = 0; i < count; i++) {
      const entry = context.index.get(sessionIds[i]!);
      if (entry === undefined || !entry.socket.connected) {
        this.outcomes[i] = outcome('disconnected', GONE);
        continue;
      }
      const slow = context.refuseSlow(entry);
      if (slow !== undefined) {
        this.outcomes[i] = slow;
        continue;
      }
      this.outcomes[i] = outcome('timeout');
      this.awaiting[i] = entry;
      this.remaining++;
      entry.addWait(this);
      // A replay is what a held live push waits for, so it is never held itself.
      if (entry.holding && message.replay !== true) entry.hold(message.messageId, () => this.send(i, entry, message));
      else this.send(i, entry, message);
    }
    if (this.remaining === 0) {
      resolve(this.outcomes);
      return;
    }
    this.timer = setTimeout(() => this.finish('timeout', ''), message.ackTimeoutMs);
    if (signal.aborted) this.onAbort();
    else signal.addEventListener('abort', this.onAbort, { once: true });
  }

  private send(i: number, entry: AckTarget, message: PushMessage): void {
    // A held push whose wait ended (timeout, close, cancel) before the replay did is not sent.
    if (this.awaiting[i] !== entry) return;
    this.ackIds[i] = (entry.socket as unknown as SocketAckInternals).nsp._ids;
    this.emittedAt[i] = performance.now();
    entry.emit(message, (ackData: unknown) => this.acked(i, ackData));
  }

  disconnected(entry: AckTarget): void {
    for (let i = 0; i < this.awaiting.length; i++) {
      if (this.awaiting[i] === entry) this.settle(i, 'disconnected', CLOSED_WHILE_AWAITED);
    }
  }

  private acked(i: number, ackData: unknown): void {
    if (this.awaiting[i] === undefined) {
      this.lateAck(i, ackData);
      return;
    }
    // Only this session's delivery fails: the reply for the others must not be lost to one client's ack.
    const refusal = checkAck(ackData, this.context.ackLimits);
    if (refusal !== undefined) {
      this.settle(i, 'failed', refusal.message);
      return;
    }
    const result = this.outcomes[i]!;
    result.latencyUs = Math.max(0, Math.round((performance.now() - this.emittedAt[i]!) * 1000));
    result.ackData = ackData;
    this.settle(i, 'acked', '');
  }

  private settle(i: number, status: DeliveryStatus, error: string): void {
    const entry = this.awaiting[i];
    if (entry === undefined) return;
    this.awaiting[i] = undefined;
    // Socket.IO keeps an unanswered ack callback even after its socket closed; ours is done with it,
    // unless a late ack of a tracked message is still worth recording.
    if (status !== 'acked') {
      const ackId = this.ackIds[i]!;
      if (this.message.tracked === true && status !== 'disconnected' && this.context.lateAck !== undefined) {
        this.late ??= new Array(this.awaiting.length);
        this.late[i] = entry;
        entry.keepForLateAck(ackId);
      } else (entry.socket as unknown as SocketAckInternals).acks.delete(ackId);
    }
    entry.removeWait(this);
    const result = this.outcomes[i]!;
    result.status = status;
    result.error = error;
    // The last one is told by `resolve`, with the rest.
    if (--this.remaining === 0) this.done();
    else this.onOutcome?.(i, result);
  }

  /** An ack after the wait ended: recorded for a tracked message whose callback was kept, else ignored. */
  private lateAck(i: number, ackData: unknown): void {
    const entry = this.late?.[i];
    if (entry === undefined) return;
    this.late![i] = undefined;
    entry.lateAckArrived(this.ackIds[i]!);
    if (checkAck(ackData, this.context.ackLimits) !== undefined) return;
    const latencyUs = Math.max(0, Math.round((performance.now() - this.emittedAt[i]!) * 1000));
    this.context.lateAck?.(entry, this.message, ackData, latencyUs);
  }

  /** Ends the wait: every session still awaited gets `status`, and its ack callback is dropped. */
  private finish(status: DeliveryStatus, error: string): void {
    for (let i = 0; i < this.awaiting.length; i++) this.settle(i, status, error);
  }

  private done(): void {
    clearTimeout(this.timer);
    this.signal.removeEventListener('abort', this.onAbort);
    this.resolve(this.outcomes);
  }
}
