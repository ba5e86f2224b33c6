import { status as GrpcStatus, Metadata, type ServiceError } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { type ErrorCode, isPushgateError } from '../errors.js';

/** The one table from pushgate error codes to gRPC status codes. */
export const GRPC_STATUS = {
  invalid_argument: GrpcStatus.INVALID_ARGUMENT,
  payload_too_large: GrpcStatus.INVALID_ARGUMENT,
  deadline_exceeded: GrpcStatus.DEADLINE_EXCEEDED,
  cancelled: GrpcStatus.CANCELLED,
  presence_overflow: GrpcStatus.RESOURCE_EXHAUSTED,
  shutting_down: GrpcStatus.UNAVAILABLE,
  registry_unavailable: GrpcStatus.UNAVAILABLE,
  node_unreachable: GrpcStatus.UNAVAILABLE,
  cursor_expired: GrpcStatus.FAILED_PRECONDITION,
  internal: GrpcStatus.INTERNAL,
  token_missing: GrpcStatus.UNAUTHENTICATED,
  token_malformed: GrpcStatus.UNAUTHENTICATED,
  token_expired: GrpcStatus.UNAUTHENTICATED,
  token_signature_invalid: GrpcStatus.UNAUTHENTICATED,
  token_algorithm_not_allowed: GrpcStatus.UNAUTHENTICATED,
  token_claims_invalid: GrpcStatus.UNAUTHENTICATED,
  client_type_missing: GrpcStatus.INVALID_ARGUMENT,
  client_type_invalid: GrpcStatus.INVALID_ARGUMENT,
  dev_mode_disabled: GrpcStatus.PERMISSION_DENIED,
  unauthenticated: GrpcStatus.UNAUTHENTICATED,
  permission_denied: GrpcStatus.PERMISSION_DENIED,
  rate_limited: GrpcStatus.RESOURCE_EXHAUSTED,
  too_many_streams: GrpcStatus.RESOURCE_EXHAUSTED,
  inbox_full: GrpcStatus.RESOURCE_EXHAUSTED,
  receipt_overflow: GrpcStatus.RESOURCE_EXHAUSTED,
  message_not_found: GrpcStatus.NOT_FOUND,
  message_id_reused: GrpcStatus.ALREADY_EXISTS,
  slow_consumer: GrpcStatus.RESOURCE_EXHAUSTED,
  ack_too_large: GrpcStatus.RESOURCE_EXHAUSTED,
  ack_too_deep: GrpcStatus.INVALID_ARGUMENT,
  ack_binary: GrpcStatus.INVALID_ARGUMENT,
  too_many_sessions: GrpcStatus.RESOURCE_EXHAUSTED,
  too_many_connections: GrpcStatus.RESOURCE_EXHAUSTED,
  origin_not_allowed: GrpcStatus.PERMISSION_DENIED,
  not_found: GrpcStatus.NOT_FOUND,
  method_not_allowed: GrpcStatus.UNIMPLEMENTED,
} as const satisfies Record<ErrorCode, GrpcStatus>;

export type GrpcError = Partial<ServiceError> & { code: GrpcStatus; details: string };

/**
 * Turns anything a handler threw into the status the caller sees. Caller mistakes are logged at
 * info; anything that is not a PushgateError is a fault: logged at error, reported as INTERNAL
 * without its details, which stay in the log under the request id.
 */
export function toGrpcError(err: unknown, log: Logger, requestId: string, method: string, caller = '', userId?: string): GrpcError {
  const metadata = new Metadata();
  metadata.set('x-request-id', requestId);
  metadata.set('pushgate-error-code', isPushgateError(err) ? err.code : 'internal');
  if (isPushgateError(err)) {
    for (const [key, value] of Object.entries(err.details)) metadata.set(`pushgate-${key.replaceAll('_', '-')}`, value);
    const code = GRPC_STATUS[err.code];
    if (code === GrpcStatus.INTERNAL) log.error({ err, method, requestId, caller }, 'call failed');
    else log.info({ method, requestId, caller, userId, code: err.code, reason: err.message }, 'call refused');
    return { code, details: err.message, metadata };
  }
  log.error({ err, method, requestId, caller }, 'call failed with an unexpected error');
  return { code: GrpcStatus.INTERNAL, details: `internal error (request id ${requestId})`, metadata };
}
