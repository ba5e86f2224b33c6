import type { SessionRecord } from './session.js';

export type PresenceKind =
  | 'session_connected'
  | 'session_disconnected'
  | 'user_online'
  | 'user_offline'
  | 'snapshot_complete';

/**
 * Why a session ended. Open-ended on purpose (a later cluster mode adds `node_lost`), but these are
 * the values the edge produces.
 */
export type DisconnectReason =
  | 'client_disconnect'
  | 'heartbeat_timeout'
  | 'transport_error'
  | 'server_shutdown'
  | 'kicked'
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
}

export type PresenceListener = (event: PresenceEvent) => void;
