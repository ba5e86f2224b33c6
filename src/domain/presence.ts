import { PushgateError } from '../errors.js';
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
  | 'slow_consumer'
  | 'too_many_sessions'
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

/** Most sessions one `sessionsPage` call returns. */
export const MAX_SESSIONS_PAGE = 1000;

/** Refuses a `sessionsPage` limit out of 1…MAX_SESSIONS_PAGE, naming it; both adapters check alike. */
export function checkPageLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_SESSIONS_PAGE) {
    throw new PushgateError('invalid_argument', `sessions page limit must be an integer from 1 to ${MAX_SESSIONS_PAGE}, got ${limit}`);
  }
  return limit;
}

/** One page of a snapshot's sessions (see PresenceFeed.sessionsPage). */
export interface SessionsPage {
  readonly sessions: SessionRecord[];
  /**
   * `sessionCounts[i]` is how many sessions the user of `sessions[i]` had when that page was read:
   * the user's total, even when its sessions span several pages.
   */
  readonly sessionCounts: number[];
  /** Token of the next page; undefined when no session can follow. A page may be empty and still have a next one. */
  readonly next: string | undefined;
}

/**
 * Where presence events come from: the registry produces them from its own changes (see
 * SessionRegistry) and keeps recent ones, so a reader can start from a snapshot or resume after a
 * cursor and then follow the live events.
 */
export interface PresenceFeed {
  /**
   * The feed's newest position: `readAfter` of it yields every change from now on. A snapshot is
   * this position followed by the pages of `sessionsPage`.
   */
  position(): Promise<string>;
  /**
   * One page of the sessions of the given users (every user when the list is empty): at most
   * `limit` (1…MAX_SESSIONS_PAGE) records, each user's sessions consecutive and in session id
   * order, users in an order of the registry's own that does not change between pages. Pass
   * `pageToken` undefined for the first page, then each page's `next` with the same `userIds`
   * until `next` is undefined. Rejects with PushgateError `invalid_argument` for a token that is
   * not one, or a limit out of range.
   *
   * Pages are read one after another, not atomically: a page read after `position()` was taken may
   * already reflect changes that `readAfter(position)` also yields, and a session may be missing
   * from every page if it left while they were read. Applied as set updates (snapshot and
   * session_connected add a session, session_disconnected removes it), the pages followed by the
   * events after the position converge on the registry's state; each page's counts are true when
   * that page was read.
   */
  sessionsPage(userIds: readonly string[], pageToken: string | undefined, limit: number): Promise<SessionsPage>;
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
