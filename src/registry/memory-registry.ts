import type { PresenceEvent, PresenceKind, PresenceListener } from '../domain/presence.js';
import { matchesFilter, type SessionFilter, type SessionRecord } from '../domain/session.js';
import type { SessionRegistry } from './session-registry.js';

/**
 * The embedded single-node registry. Every operation completes synchronously inside the returned
 * promise, so a `subscribe` followed by a `snapshot` in the same tick sees no change in between.
 */
export class MemorySessionRegistry implements SessionRegistry {
  /** userId → sessionId → record; Map iteration order is insertion (connect) order. */
  private readonly users = new Map<string, Map<string, SessionRecord>>();
  private readonly listeners = new Set<PresenceListener>();

  constructor(private readonly onListenerError: (err: unknown) => void = () => {}) {}

  async register(session: SessionRecord): Promise<void> {
    let sessions = this.users.get(session.userId);
    const first = sessions === undefined;
    if (sessions === undefined) {
      sessions = new Map();
      this.users.set(session.userId, sessions);
    }
    const known = sessions.has(session.sessionId);
    sessions.set(session.sessionId, session);
    if (known) return;
    if (first) this.emit('user_online', session, '', 1);
    this.emit('session_connected', session, '', sessions.size);
  }

  async unregister(userId: string, sessionId: string, reason: string): Promise<SessionRecord | undefined> {
    const sessions = this.users.get(userId);
    const session = sessions?.get(sessionId);
    if (sessions === undefined || session === undefined) return undefined;
    sessions.delete(sessionId);
    if (sessions.size === 0) this.users.delete(userId);
    this.emit('session_disconnected', session, reason, sessions.size);
    if (sessions.size === 0) this.emit('user_offline', session, reason, 0);
    return session;
  }

  async touch(userId: string, sessionId: string, atMs: number): Promise<void> {
    const session = this.users.get(userId)?.get(sessionId);
    if (session !== undefined && atMs > session.lastSeenAtMs) session.lastSeenAtMs = atMs;
  }

  async lookup(userId: string, filter?: SessionFilter): Promise<SessionRecord[]> {
    const sessions = this.users.get(userId);
    if (sessions === undefined) return [];
    const found: SessionRecord[] = [];
    for (const session of sessions.values()) {
      if (matchesFilter(session, filter)) found.push(session);
    }
    return found;
  }

  async snapshot(userIds: readonly string[]): Promise<SessionRecord[]> {
    const ids = userIds.length > 0 ? userIds : this.users.keys();
    const found: SessionRecord[] = [];
    for (const userId of ids) {
      const sessions = this.users.get(userId);
      if (sessions !== undefined) found.push(...sessions.values());
    }
    return found;
  }

  subscribe(listener: PresenceListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  subscriberCount(): number {
    return this.listeners.size;
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  private emit(kind: PresenceKind, session: SessionRecord, reason: string, sessionCount: number): void {
    if (this.listeners.size === 0) return;
    const event: PresenceEvent = { kind, userId: session.userId, session, reason, atMs: Date.now(), sessionCount };
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
