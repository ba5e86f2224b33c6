import type { ServerResponse } from 'node:http';
import { type ErrorCode, isPushgateError, PushgateError } from '../errors.js';

/** The one table from pushgate error codes to HTTP status codes. */
export const HTTP_STATUS = {
  invalid_argument: 400,
  payload_too_large: 413,
  deadline_exceeded: 504,
  cancelled: 499,
  presence_overflow: 429,
  shutting_down: 503,
  registry_unavailable: 503,
  node_unreachable: 503,
  cursor_expired: 409,
  internal: 500,
  token_missing: 401,
  token_malformed: 401,
  token_expired: 401,
  token_signature_invalid: 401,
  token_algorithm_not_allowed: 401,
  token_claims_invalid: 401,
  client_type_missing: 400,
  client_type_invalid: 400,
  dev_mode_disabled: 403,
  unauthenticated: 401,
  permission_denied: 403,
  rate_limited: 429,
  too_many_streams: 429,
  inbox_full: 429,
  receipt_overflow: 429,
  message_not_found: 404,
  message_id_reused: 409,
  slow_consumer: 429,
  ack_too_large: 413,
  ack_too_deep: 400,
  ack_binary: 415,
  too_many_sessions: 429,
  too_many_connections: 429,
  origin_not_allowed: 403,
  not_found: 404,
  method_not_allowed: 405,
} as const satisfies Record<ErrorCode, number>;

/** `{ error: { code, message } }` with the code's status; anything not a PushgateError is a 500 without details. */
export function sendError(res: ServerResponse, err: unknown, status?: number): void {
  const error = isPushgateError(err) ? err : new PushgateError('internal', 'internal error');
  sendJson(res, status ?? HTTP_STATUS[error.code], { error: { code: error.code, message: error.message } });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}
