/**
 * Every error pushgate reports to a caller, in one registry. Transports map a code to their own
 * vocabulary in one place each: gRPC status codes in grpc/status.ts, Socket.IO `connect_error`
 * data in edge/handshake.ts, HTTP status codes in http/http-status.ts.
 */
export const ERROR_CODES = {
  invalid_argument: 'A request field is missing or has a bad value; the message names the field.',
  payload_too_large: 'The pushed data is larger than PUSHGATE_MAX_PAYLOAD_BYTES.',
  deadline_exceeded: 'The caller’s deadline passed before the work finished.',
  cancelled: 'The caller cancelled the call.',
  presence_overflow: 'A presence stream fell too far behind its events and was ended.',
  shutting_down: 'The node is draining for shutdown and takes no new work.',
  registry_unavailable: 'The session registry (Redis in cluster mode) cannot be reached right now; retry later.',
  node_unreachable: 'Another cluster node holding some of the sessions did not answer; the rest were handled; retry.',
  cursor_expired: 'A presence cursor is older than the retained events (or the feed was reset); take a snapshot instead.',
  internal: 'An unexpected server fault; details are in the server log.',
  token_missing: 'The client sent no token.',
  token_malformed: 'The token is not a well-formed JWT.',
  token_expired: 'The token’s exp claim is in the past.',
  token_signature_invalid: 'The token’s signature does not match the configured key (forged or signed with another key).',
  token_algorithm_not_allowed: 'The token is signed with an algorithm the server does not accept for its key.',
  token_claims_invalid: 'A required claim is missing or wrong (sub, exp, iss, aud).',
  client_type_missing: 'The client did not say which client type it is.',
  client_type_invalid: 'The client type is not one of PUSHGATE_CLIENT_TYPES.',
  dev_mode_disabled: 'A development-only feature was used while PUSHGATE_DEV is off.',
  unauthenticated: 'The caller sent no valid API key or client certificate.',
  permission_denied: 'The caller’s key or certificate does not grant the scope this call needs.',
  rate_limited: 'The caller made more calls than its rate allows; retry after the time in the retry hint.',
  message_id_reused:
    'The message_id was already used, within the idempotency window, for a push to another user or with another event or client types.',
  message_not_found: 'No receipt is kept for this message id (never tracked, or past PUSHGATE_RECEIPT_RETENTION_S).',
  receipt_overflow: 'A WatchReceipts stream fell too far behind its events and was ended; resume from its last cursor.',
  inbox_full: 'The user’s offline inbox already holds PUSHGATE_INBOX_MAX_MESSAGES messages and PUSHGATE_INBOX_FULL_POLICY is refuse_new.',
  too_many_streams: 'The node or the caller already has as many presence streams open as allowed.',
  slow_consumer:
    'The client read too slowly: more than PUSHGATE_MAX_CLIENT_BUFFER_BYTES were queued for it; the push to it failed and its socket was closed.',
  ack_too_large: 'The client acked with a value larger than PUSHGATE_MAX_ACK_BYTES; that delivery failed.',
  ack_too_deep: 'The client acked with a value nested deeper than PUSHGATE_MAX_ACK_DEPTH; that delivery failed.',
  ack_binary: 'The client acked with binary data, which an ack may not carry; that delivery failed.',
  too_many_sessions: 'The user already holds PUSHGATE_MAX_SESSIONS_PER_USER sessions (with the refuse policy).',
  too_many_connections: 'The client address already holds PUSHGATE_MAX_CONNECTIONS_PER_IP connections on this node.',
  origin_not_allowed: 'The browser Origin is not in PUSHGATE_ALLOWED_ORIGINS (or, with none configured, is another site).',
  not_found: 'No such HTTP route.',
  method_not_allowed: 'The HTTP route does not take that method.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The one error class pushgate code throws on purpose. Anything else is a fault (internal). */
export class PushgateError extends Error {
  override readonly name = 'PushgateError';

  /** Machine-readable facts a caller may act on (e.g. `oldest_cursor`); gRPC sends each as `pushgate-<key>` trailer. */
  readonly details: Readonly<Record<string, string>>;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Readonly<Record<string, string>> },
  ) {
    super(message, options);
    this.details = options?.details ?? {};
  }
}

export function isPushgateError(err: unknown): err is PushgateError {
  return err instanceof PushgateError;
}

/** Thrown by config parsing; the message names the variable or flag at fault. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** The node could not start (bind its ports, join the cluster, read its keys); the message names the settings involved. */
export class StartError extends Error {
  override readonly name = 'StartError';
}
