import type { DeliveryStatus, PushRequest, PushResult } from '../domain/push.js';
import { ERROR_CODES } from '../errors.js';

// The fixed label values of pushgate's metrics: nothing a client or caller sends becomes a label.

/** Presence reasons a disconnect may carry; anything else is counted as `other`. */
export const DISCONNECT_REASONS = [
  'client_disconnect',
  'heartbeat_timeout',
  'transport_error',
  'server_shutdown',
  'kicked',
  'node_lost',
  'token_expired',
  'slow_consumer',
  'too_many_sessions',
] as const;

export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['acked', 'timeout', 'disconnected', 'sent', 'failed', 'pending'];

export type PushOutcome = 'all_acked' | 'partly_acked' | 'none_acked' | 'no_sessions' | 'no_ack' | 'error';
export const PUSH_OUTCOMES: readonly PushOutcome[] = ['all_acked', 'partly_acked', 'none_acked', 'no_sessions', 'no_ack', 'error'];

/** gRPC status names by code (grpc-js's Status enum), so this room needs no grpc-js. */
export const GRPC_STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/** The methods a call is counted under; any other path (an unknown method) is `other`. */
export const GRPC_METHODS = [
  'PushToUser',
  'PushToUsers',
  'ListSessions',
  'WatchPresence',
  'DisconnectSessions',
  'ListInbox',
  'DeleteInbox',
  'GetMessage',
  'WatchReceipts',
  'Check',
  'Watch',
  'ServerReflectionInfo',
];

/** Why a presence stream ended, from the error code it ended with. */
const STREAM_END_REASONS: Readonly<Record<string, string>> = {
  presence_overflow: 'overflow',
  cursor_expired: 'cursor_expired',
  cancelled: 'cancelled',
  deadline_exceeded: 'deadline',
  shutting_down: 'shutdown',
  registry_unavailable: 'registry_unavailable',
};

/** 1 ms to 30 s: a LAN ack is a few ms, a mobile one hundreds, the longest ack timeout 30 s-ish. */
export const ACK_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Calls, bus hops and Redis commands: sub-millisecond to seconds. */
export const CALL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function outcomeOf(request: PushRequest, result: PushResult): PushOutcome {
  const n = result.deliveries.length;
  if (n === 0) return 'no_sessions';
  if (request.noAck) return 'no_ack';
  if (result.acked === n) return 'all_acked';
  return result.acked === 0 ? 'none_acked' : 'partly_acked';
}

export function streamEndReason(codeName: string, errorCode: string | undefined): string {
  // A watch ends OK only when the node ends it: at shutdown.
  if (codeName === 'OK') return 'shutdown';
  if (codeName === 'CANCELLED') return 'cancelled';
  if (errorCode === undefined) return 'other';
  return STREAM_END_REASONS[errorCode] ?? (errorCode in ERROR_CODES ? 'refused' : 'other');
}
