/** Event a client receives just before the server closes its socket, with `{ reason }`. */
export const DISCONNECT_NOTICE_EVENT = 'pushgate:disconnect';

/** Event a client sends, with a fresh token and an ack, to stay connected past its token's expiry. */
export const TOKEN_REFRESH_EVENT = 'pushgate:refresh';

/** Every event under this prefix is pushgate's own (the disconnect notice, and those to come): backends may not push them. */
export const OWN_EVENT_PREFIX = 'pushgate:';

/**
 * Event names a push may not use, beside the `pushgate:` prefix: Socket.IO v4 refuses to emit its
 * own, and Socket.IO v2 clients (the netty-socketio app base) fire their lifecycle handlers for
 * these names when a server emits them, so a pushed `reconnect` or `error` would run the client's
 * reconnection or error code.
 */
export const RESERVED_EVENTS: ReadonlySet<string> = new Set([
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'newListener',
  'removeListener',
  // Socket.IO v2 client lifecycle events.
  'error',
  'connect_timeout',
  'connecting',
  'reconnect',
  'reconnect_attempt',
  'reconnecting',
  'reconnect_error',
  'reconnect_failed',
  'ping',
  'pong',
]);

/** True for an event name a backend may not push (see RESERVED_EVENTS and OWN_EVENT_PREFIX). */
export function isReservedEvent(event: string): boolean {
  return RESERVED_EVENTS.has(event) || event.startsWith(OWN_EVENT_PREFIX);
}
