import { performance } from 'node:perf_hooks';
import type { Socket } from 'socket.io';
import type { Delivery, PushRequest, SessionTransport } from '../domain/push.js';
import type { SessionRecord } from '../domain/session.js';

/** Event a client receives just before the server closes its socket, with `{ reason }`. */
export const DISCONNECT_NOTICE_EVENT = 'pushgate:disconnect';

export interface LocalSession {
  readonly socket: Socket;
  readonly record: SessionRecord;
  /** Pushes awaiting this session's ack; told at once when the socket closes. */
  readonly waits: Set<AckWait>;
  /** Set by the server before it closes the socket, so presence reports why. */
  closeReason: string | undefined;
  /** Settles when the session has left the registry after its socket closed. */
  unregistered: Promise<unknown> | undefined;
}

// Socket.IO keeps an ack callback in `socket.acks` until the client answers or the socket closes.
// A client that never answers would otherwise grow that map with every push, so a finished wait
// removes its callbacks by the id Socket.IO assigns: the namespace counter read just before emit.
interface SocketAckInternals {
  readonly acks: Map<number, unknown>;
  readonly nsp: { _ids: number };
}

/**
 * The sockets this node holds, by session id, and the local delivery of pushes to them: one emit
 * per session, one timer per push, results collected per session.
 */
export class LocalSessions implements SessionTransport {
  private readonly sessions = new Map<string, LocalSession>();

  add(socket: Socket, record: SessionRecord): LocalSession {
    const entry: LocalSession = { socket, record, waits: new Set(), closeReason: undefined, unregistered: undefined };
    this.sessions.set(record.sessionId, entry);
    return entry;
  }

  /** Forgets a closed socket; pushes still waiting for it report DISCONNECTED now, not at their timeout. */
  remove(sessionId: string): void {
    const entry = this.sessions.get(sessionId);
    if (entry === undefined) return;
    this.sessions.delete(sessionId);
    for (const wait of entry.waits) wait.disconnected(entry);
    entry.waits.clear();
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
    for (const entry of this.sessions.values()) count += entry.waits.size;
    return count;
  }

  deliver(sessions: readonly SessionRecord[], push: PushRequest, signal: AbortSignal): Promise<Delivery[]> {
    if (push.noAck) return Promise.resolve(sessions.map((session) => this.send(session, push)));
    return new Promise((resolve) => new AckWait(this.sessions, sessions, push, signal, resolve));
  }

  private send(session: SessionRecord, push: PushRequest): Delivery {
    const entry = this.sessions.get(session.sessionId);
    if (entry === undefined || !entry.socket.connected) return outcome(session, 'disconnected', GONE);
    entry.socket.emit(push.event, push.data);
    return outcome(session, 'sent', '');
  }
}

const GONE = 'session closed before the push reached it';
const CLOSED_WHILE_AWAITED = 'session closed before it acked';

function outcome(session: SessionRecord, status: Delivery['status'], error: string): Delivery {
  return { session, status, latencyUs: 0, ackData: undefined, error };
}

/** One push awaiting acks from several local sessions. Owns its timer and its abort listener. */
export class AckWait {
  private readonly deliveries: Delivery[];
  /** Per delivery: the session entry while its ack is awaited, undefined once settled. */
  private readonly awaiting: (LocalSession | undefined)[];
  private readonly ackIds: number[];
  private readonly emittedAt: number[];
  private remaining = 0;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly onAbort = (): void => this.finish('failed', 'call cancelled or its deadline passed before the ack');

  constructor(
    index: ReadonlyMap<string, LocalSession>,
    sessions: readonly SessionRecord[],
    push: PushRequest,
    private readonly signal: AbortSignal,
    private readonly resolve: (deliveries: Delivery[]) => void,
  ) {
    const count = sessions.length;
    this.deliveries = new Array(count);
    this.awaiting = new Array(count);
    this.ackIds = new Array(count);
    this.emittedAt = new Array(count);
    for (let i = 0; i < count; i++) {
      const session = sessions[i]!;
      const entry = index.get(session.sessionId);
      if (entry === undefined || !entry.socket.connected) {
        this.deliveries[i] = outcome(session, 'disconnected', GONE);
        continue;
      }
      this.deliveries[i] = outcome(session, 'timeout', '');
      this.awaiting[i] = entry;
      this.remaining++;
      entry.waits.add(this);
      const socket = entry.socket;
      this.ackIds[i] = (socket as unknown as SocketAckInternals).nsp._ids;
      this.emittedAt[i] = performance.now();
      socket.emit(push.event, push.data, (ackData: unknown) => this.acked(i, ackData));
    }
    if (this.remaining === 0) {
      resolve(this.deliveries);
      return;
    }
    this.timer = setTimeout(() => this.finish('timeout', ''), push.ackTimeoutMs);
    if (signal.aborted) this.onAbort();
    else signal.addEventListener('abort', this.onAbort, { once: true });
  }

  disconnected(entry: LocalSession): void {
    for (let i = 0; i < this.awaiting.length; i++) {
      if (this.awaiting[i] === entry) this.settle(i, 'disconnected', CLOSED_WHILE_AWAITED);
    }
  }

  private acked(i: number, ackData: unknown): void {
    const delivery = this.deliveries[i]!;
    if (this.awaiting[i] === undefined) return;
    delivery.latencyUs = Math.max(0, Math.round((performance.now() - this.emittedAt[i]!) * 1000));
    delivery.ackData = ackData;
    this.settle(i, 'acked', '');
  }

  private settle(i: number, status: Delivery['status'], error: string): void {
    const entry = this.awaiting[i];
    if (entry === undefined) return;
    this.awaiting[i] = undefined;
    entry.waits.delete(this);
    const delivery = this.deliveries[i]!;
    delivery.status = status;
    delivery.error = error;
    if (--this.remaining === 0) this.done();
  }

  /** Ends the wait: every delivery still awaited gets `status`, and its ack callback is dropped. */
  private finish(status: Delivery['status'], error: string): void {
    for (let i = 0; i < this.awaiting.length; i++) {
      const entry = this.awaiting[i];
      if (entry === undefined) continue;
      (entry.socket as unknown as SocketAckInternals).acks.delete(this.ackIds[i]!);
      this.settle(i, status, error);
    }
  }

  private done(): void {
    clearTimeout(this.timer);
    this.signal.removeEventListener('abort', this.onAbort);
    this.resolve(this.deliveries);
  }
}
