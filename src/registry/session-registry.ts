import type { PresenceListener } from '../domain/presence.js';
import type { SessionFilter, SessionRecord } from '../domain/session.js';

/**
 * Where pushgate keeps who is connected. The memory implementation serves one node; a Redis one
 * (cluster mode) implements the same contract across nodes.
 *
 * Contract:
 * - Each write is atomic: a reader sees a session either fully registered or not at all, and a
 *   user's session count always equals the number of its registered sessions.
 * - Presence events are produced by the registry from its own changes, never by callers, and are
 *   delivered to listeners per user in the order the changes happened:
 *   register → `user_online` (first session only) then `session_connected`;
 *   unregister → `session_disconnected` then `user_offline` (last session only).
 * - Repeated calls are harmless: registering a known session id replaces the record without events;
 *   unregistering an unknown one does nothing and emits nothing.
 * - A listener that throws does not stop other listeners or the write.
 */
export interface SessionRegistry {
  register(session: SessionRecord): Promise<void>;
  /** Removes a session; resolves to the removed record, or undefined if it was not registered. */
  unregister(userId: string, sessionId: string, reason: string): Promise<SessionRecord | undefined>;
  /** Refreshes last_seen_at. Unknown sessions are ignored. */
  touch(userId: string, sessionId: string, atMs: number): Promise<void>;
  /** A user's sessions matching the filter, oldest connection first. One lookup, on the push hot path. */
  lookup(userId: string, filter?: SessionFilter): Promise<SessionRecord[]>;
  /**
   * Every session of the given users (every user when the list is empty), grouped by user. Taken
   * consistently with `subscribe`: an event emitted after a snapshot resolves describes a change
   * not contained in it.
   */
  snapshot(userIds: readonly string[]): Promise<SessionRecord[]>;
  /** Starts delivering presence events to the listener; returns the function that stops it. */
  subscribe(listener: PresenceListener): () => void;
  /** Number of active subscriptions: lets tests and metrics see that streams clean up. */
  subscriberCount(): number;
  close(): Promise<void>;
}
