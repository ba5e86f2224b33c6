import { DISCONNECT_NOTICE_EVENT } from '../domain/events.js';
import type { DisconnectReason } from '../domain/presence.js';
import type { LocalSession } from './local-sessions.js';

/** Socket.IO's disconnect reasons, in the vocabulary presence subscribers see. */
export const REASONS: Record<string, DisconnectReason> = {
  'client namespace disconnect': 'client_disconnect',
  'transport close': 'client_disconnect',
  'ping timeout': 'heartbeat_timeout',
  'transport error': 'transport_error',
  'parse error': 'transport_error',
  'server shutting down': 'server_shutdown',
  'forced server close': 'server_shutdown',
  'forced close': 'server_shutdown',
  'server namespace disconnect': 'kicked',
};

/** Records why the server closes a session (for presence) and tells the client before it closes. */
export function announceClose(entry: LocalSession, reason: DisconnectReason, notice: string): void {
  entry.closeReason = reason;
  entry.socket.emit(DISCONNECT_NOTICE_EVENT, { reason: notice });
}

/** Longest wait at shutdown for a connection to flush the notice and close. */
const SHUTDOWN_FLUSH_MS = 1000;

/**
 * Sends the shutdown notice, then closes the connection once its queued packets are written. The
 * connection (not the namespace) is closed, as when the server goes away: the client sees a
 * transport close and reconnects on its own, to another node.
 */
export function closeAfterNotice(entry: LocalSession): Promise<void> {
  const conn = entry.socket.conn;
  announceClose(entry, 'server_shutdown', 'server_shutdown');
  return new Promise((resolve) => {
    if (conn.readyState === 'closed') {
      resolve();
      return;
    }
    const timer = setTimeout(resolve, SHUTDOWN_FLUSH_MS);
    conn.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    conn.close();
  });
}
