import type { PresenceEvent, PresenceListener } from '../domain/presence.js';
import type { SessionFilter, SessionRecord } from '../domain/session.js';

/** Sessions as of one position in the presence feed. */
export interface RegistrySnapshot {
  readonly sessions: SessionRecord[];
  /** `readAfter(cursor)` yields exactly the changes the snapshot does not contain. */
  readonly cursor: string;
}

/**
 * Where pushgate keeps who is connected. The memory implementation serves one node; the Redis one
 * (cluster mode) implements the same contract across nodes.
 *
 * Contract:
 * - Each write is atomic: a reader sees a session either fully registered or not at all, and a
 *   user's session count always equals the number of its registered sessions.
 * - Presence events are produced by the registry from its own changes, never by callers, and are
 *   delivered to listeners per user in the order the changes happened:
 *   register → `user_online` (first session only) then `session_connected`;
 *   unregister → `session_disconnected` then `user_offline` (last session only).
 * - Every event carries a cursor. The registry keeps recent events (bounded by count and age) so a
 *   reader that lost its place can resume with `readAfter`.
 * - Repeated calls are harmless: registering a known session id replaces the record without events;
 *   unregistering an unknown one does nothing and emits nothing.
 * - A listener that throws does not stop other listeners or the write.
 * - Calls that cannot reach the backing store reject with PushgateError `registry_unavailable`
 *   promptly; they never queue without bound.
 */
export interface SessionRegistry {
  register(session: SessionRecord): Promise<void>;
  /** Removes a session; resolves to the removed record, or undefined if it was not registered. */
  unregister(userId: string, sessionId: string, reason: string): Promise<SessionRecord | undefined>;
  /** Refreshes last_seen_at. Unknown sessions are ignored. May be applied lazily (batched). */
  touch(userId: string, sessionId: string, atMs: number): Promise<void>;
  /** A user's sessions matching the filter, oldest connection first. One lookup, on the push hot path. */
  lookup(userId: string, filter?: SessionFilter): Promise<SessionRecord[]>;
  /** Every session of the given users (every user when the list is empty), and the feed position it reflects. */
  snapshot(userIds: readonly string[]): Promise<RegistrySnapshot>;
  /**
   * Up to `limit` retained events after `cursor`, oldest first (an empty array once caught up).
   * Rejects with PushgateError `invalid_argument` for a string that is not a cursor, and with
   * `cursor_expired` (message and `oldestCursor` naming the oldest cursor still held) when events
   * after it were already dropped or the feed was reset.
   */
  readAfter(cursor: string, limit: number): Promise<PresenceEvent[]>;
  /** True when `event` comes after the position `cursor` (so a reader at `cursor` has not seen it). */
  follows(event: PresenceEvent, cursor: string): boolean;
  /**
   * Starts delivering live presence events to the listener; returns the function that stops it.
   * Events of changes made through this registry before the call are not delivered. If the
   * registry ever cannot deliver every event (a cluster node's feed fell behind the retention),
   * it calls `onGap` once with the reason and ends the subscription; the subscriber should
   * resume from its last cursor or take a snapshot.
   */
  subscribe(listener: PresenceListener, onGap?: (reason: string) => void): () => void;
  /** Number of active subscriptions: lets tests and metrics see that streams clean up. */
  subscriberCount(): number;
  close(): Promise<void>;
}
