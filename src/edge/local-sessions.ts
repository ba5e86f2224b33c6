import type { Socket } from 'socket.io';
import { type Outcome, outcome, type PushMessage } from '../domain/push.js';
import type { SessionRecord } from '../domain/session.js';
import type { SessionTransport } from '../domain/session-transport.js';
import { type AckTarget, AckWait, GONE } from './ack-wait.js';

/** A socket this node holds; `waits` are the pushes awaiting its ack, told at once when it closes. */
export interface LocalSession extends AckTarget {
  readonly record: SessionRecord;
  /** Set by the server before it closes the socket, so presence reports why. */
  closeReason: string | undefined;
  /** Settles when the session has left the registry after its socket closed. */
  unregistered: Promise<unknown> | undefined;
}

/**
 * The sockets this node holds, by session id, and the local delivery of pushes to them: one emit
 * per session, one timer per push, results collected per session (see AckWait).
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

  deliver(sessionIds: readonly string[], message: PushMessage, signal: AbortSignal): Promise<Outcome[]> {
    if (message.noAck) return Promise.resolve(sessionIds.map((id) => this.send(id, message)));
    return new Promise((resolve) => new AckWait(this.sessions, sessionIds, message, signal, resolve));
  }

  private send(sessionId: string, message: PushMessage): Outcome {
    const entry = this.sessions.get(sessionId);
    if (entry === undefined || !entry.socket.connected) return outcome('disconnected', GONE);
    entry.socket.emit(message.event, message.data);
    return outcome('sent');
  }
}
