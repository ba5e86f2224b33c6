/** Event a client receives just before the server closes its socket, with `{ reason }`. */
export const DISCONNECT_NOTICE_EVENT = 'pushgate:disconnect';

/** Event names a push may not use: Socket.IO refuses to emit these, and `pushgate:disconnect` is ours. */
export const RESERVED_EVENTS: ReadonlySet<string> = new Set([
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'newListener',
  'removeListener',
  DISCONNECT_NOTICE_EVENT,
]);
