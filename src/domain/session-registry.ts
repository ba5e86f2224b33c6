import type { PresenceFeed } from './presence.js';
import type { SessionFilter, SessionRecord } from './session.js';

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
export interface SessionRegistry extends PresenceFeed {
  register(session: SessionRecord): Promise<void>;
  /** Removes a session; resolves to the removed record, or undefined if it was not registered. */
  unregister(userId: string, sessionId: string, reason: string): Promise<SessionRecord | undefined>;
  /** Refreshes last_seen_at. Unknown sessions are ignored. May be applied lazily (batched). */
  touch(userId: string, sessionId: string, atMs: number): Promise<void>;
  /** A user's sessions matching the filter, oldest connection first. One lookup, on the push hot path. */
  lookup(userId: string, filter?: SessionFilter): Promise<SessionRecord[]>;
  /**
   * The sessions of many users at once (a batch push): every given user id is a key of the map,
   * with its sessions matching the filter, oldest connection first (empty when it has none).
   * Duplicates count once. One round trip per storage shard holding any of the users, however many.
   */
  lookupMany(userIds: readonly string[], filter?: SessionFilter): Promise<Map<string, SessionRecord[]>>;
  close(): Promise<void>;
}
