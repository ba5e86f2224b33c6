import type { PresenceEvent } from './presence.js';

/** Tags, lengths, kind, timestamps and counts of one encoded event: everything but its strings. */
const FIXED_OVERHEAD_BYTES = 64;

/**
 * About the bytes `event` takes once encoded for a reader: its strings plus a fixed overhead. It
 * bounds what a slow reader may leave unread, so it only needs to grow with the event (a long user
 * agent, a long cursor); the domain knows no wire format, so it is an estimate, not an encoding.
 */
export function approximateEventBytes(event: PresenceEvent): number {
  const { session } = event;
  let bytes = FIXED_OVERHEAD_BYTES + event.userId.length + event.reason.length + event.cursor.length;
  if (session !== undefined) {
    bytes +=
      session.sessionId.length +
      session.userId.length +
      session.clientType.length +
      session.nodeId.length +
      session.remoteAddress.length +
      session.userAgent.length;
  }
  return bytes;
}
