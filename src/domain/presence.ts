import type { SessionRecord } from './session.js';

export type PresenceKind =
  | 'session_connected'
  | 'session_disconnected'
  | 'user_online'
  | 'user_offline'
  | 'snapshot_complete';

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
