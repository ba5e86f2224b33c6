import type { SessionRecord } from './session.js';

export type PresenceKind = 'session_connected' | 'session_disconnected' | 'user_online' | 'user_offline' | 'snapshot_complete';

/**
 * Why a session ended: the values the edge produces, plus `node_lost` when a cluster node vanished
 * without cleanup and another node reaped its sessions.
 */
export type DisconnectReason =
  | 'client_disconnect'
  | 'heartbeat_timeout'
  | 'transport_error'
  | 'server_shutdown'
  | 'kicked'
  | 'node_lost'
  | 'token_expired'
  | (string & {});

export interface PresenceEvent {
  readonly kind: PresenceKind;
  /** Empty for snapshot_complete. */
  readonly userId: string;
  readonly session: SessionRecord | undefined;
  readonly reason: string;
  readonly atMs: number;
  /** The user's live sessions after the event. */
  readonly sessionCount: number;
  /**
   * Opaque position in the registry's presence feed: `readAfter(cursor)` yields every later event.
   * Snapshot events carry the snapshot's cursor.
   */
  readonly cursor: string;
}

export type PresenceListener = (event: PresenceEvent) => void;

/** Sessions as of one position in the presence feed. */
export interface RegistrySnapshot {
  readonly sessions: SessionRecord[];
  /** `readAfter(cursor)` yields exactly the changes the snapshot does not contain. */
  readonly cursor: string;
}

/**
 * Where presence events come from: the registry produces them from its own changes (see
 * SessionRegistry) and keeps recent ones, so a reader can start from a snapshot or resume after a
 * cursor and then follow the live events.
 */
export interface PresenceFeed {
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
}
