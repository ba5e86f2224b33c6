import { randomUUID } from 'node:crypto';
import { isReservedEvent } from '../domain/events.js';
import type { BatchPushRequest, PushMessage, PushRequest, StoragePolicy } from '../domain/push.js';
import { isWellFormed, MAX_USER_ID_LENGTH } from '../domain/session.js';
import { PushgateError } from '../errors.js';
import type { PushToUserRequest, PushToUsersRequest } from '../gen/pushgate/v1/push_service.js';
import type { DataFacts } from './payload-size.js';
import { type StorageLimits, storageOf, waitForOf } from './storage-options.js';

/** Request checks shared by the handlers; every message names the offending field. */

export interface PushLimits {
  readonly clientTypes: readonly string[];
  readonly ackTimeoutMs: number;
  readonly maxAckTimeoutMs: number;
  readonly maxPayloadBytes: number;
  /** The offline inbox's TTLs. */
  readonly inbox: StorageLimits;
}

/** User, session and message ids share the user id's limit. */
const MAX_ID_LENGTH = MAX_USER_ID_LENGTH;
const MAX_EVENT_LENGTH = 128;

function invalid(message: string): PushgateError {
  return new PushgateError('invalid_argument', message);
}

export function requireId(value: string, field: string): string {
  if (value === '') throw invalid(`${field} is required`);
  if (value.length > MAX_ID_LENGTH) throw invalid(`${field} must be at most ${MAX_ID_LENGTH} characters`);
  if (!isWellFormed(value)) throw invalid(`${field} is not well-formed Unicode (it holds a lone surrogate)`);
  return value;
}

/** Lower-cases and checks client types against the configured list. */
export function clientTypesOf(values: readonly string[], allowed: readonly string[], field = 'client_types'): string[] {
  return values.map((value, i) => {
    const clientType = value.trim().toLowerCase();
    if (!allowed.includes(clientType)) {
      throw invalid(`${field}[${i}] "${value.slice(0, 32)}" is not a known client type: use ${allowed.join(', ')}`);
    }
    return clientType;
  });
}

/** A request's page_size: 0 means the server's maximum, and a larger value is lowered to it. */
export function pageSizeOf(pageSize: number, max: number): number {
  if (pageSize < 0) throw invalid(`page_size must not be negative, got ${pageSize}`);
  return pageSize === 0 ? max : Math.min(pageSize, max);
}

/** `data` is what the deserializer found in the request's `data` bytes (see pushDecoder). */
/** The most items one stream message may carry when a caller asks for them packed. */
const MAX_PER_MESSAGE = 1000;

/** A stream's items per message (max_events_per_message, max_results_per_message): 0 or 1 means one each. */
export function perMessageOf(value: number, field: string): number {
  if (value > MAX_PER_MESSAGE) throw invalid(`${field} must be at most ${MAX_PER_MESSAGE}, got ${value}`);
  return value;
}

export function toPushRequest(request: PushToUserRequest, data: DataFacts, limits: PushLimits): PushRequest {
  const userId = requireId(request.userId, 'user_id');
  const waitFor = waitForOf(request.waitFor, request.noAck);
  return { userId, ...pushOptionsOf(request, data, limits), callerMessageId: request.messageId !== '', waitFor };
}

export interface BatchLimits extends PushLimits {
  /** PUSHGATE_MAX_BATCH_USERS: `user_ids` one PushToUsers request may name. */
  readonly maxBatchUsers: number;
}

/** PushToUsers: the users (checked one by one, duplicates dropped), then the same checks as PushToUser. */
export function toBatchPushRequest(request: PushToUsersRequest, data: DataFacts, limits: BatchLimits): BatchPushRequest {
  const count = request.userIds.length;
  if (count === 0) throw invalid('user_ids is required: name at least one user');
  if (count > limits.maxBatchUsers) {
    throw invalid(
      `user_ids names ${count} users, more than the ${limits.maxBatchUsers} one call may push to (PUSHGATE_MAX_BATCH_USERS); split them over several calls`,
    );
  }
  const userIds = [...new Set(request.userIds.map((id, i) => requireId(id, `user_ids[${i}]`)))];
  return { userIds, ...pushOptionsOf(request, data, limits) };
}

/** What PushToUser and PushToUsers share: everything but who. */
type PushFields = Pick<
  PushToUserRequest,
  'event' | 'data' | 'clientTypes' | 'ackTimeoutMs' | 'noAck' | 'messageId' | 'deliveryMode' | 'ttlSeconds' | 'removal'
>;

function pushOptionsOf(
  request: PushFields,
  data: DataFacts,
  limits: PushLimits,
): PushMessage & { readonly clientTypes: string[]; readonly storage?: StoragePolicy } {
  const { event } = request;
  if (event === '') throw invalid('event is required');
  if (event.length > MAX_EVENT_LENGTH) throw invalid(`event must be at most ${MAX_EVENT_LENGTH} characters`);
  if (isReservedEvent(event)) {
    throw invalid(`event "${event}" is reserved by Socket.IO (v4, or v2 clients' lifecycle) or pushgate (pushgate:*); choose another name`);
  }
  if (data.bytes > limits.maxPayloadBytes) {
    throw new PushgateError(
      'payload_too_large',
      `data is ${data.bytes} bytes encoded, over the limit of ${limits.maxPayloadBytes} (PUSHGATE_MAX_PAYLOAD_BYTES)`,
    );
  }
  // Too deep to decode safely: the deserializer left it out, so `request.data` must not be pushed as it is.
  if (data.depthOver !== undefined) throw invalid(`data is nested deeper than ${data.depthOver} levels (PUSHGATE_MAX_DATA_DEPTH)`);
  if (request.ackTimeoutMs > limits.maxAckTimeoutMs) {
    throw invalid(`ack_timeout_ms must be at most ${limits.maxAckTimeoutMs} (PUSHGATE_MAX_ACK_TIMEOUT_MS), got ${request.ackTimeoutMs}`);
  }
  if (request.messageId.length > MAX_ID_LENGTH) throw invalid(`message_id must be at most ${MAX_ID_LENGTH} characters`);
  return {
    event,
    // An unset `data` reaches the client as null, the JSON of "nothing".
    data: request.data ?? null,
    clientTypes: clientTypesOf(request.clientTypes, limits.clientTypes),
    ackTimeoutMs: request.ackTimeoutMs === 0 ? limits.ackTimeoutMs : request.ackTimeoutMs,
    noAck: request.noAck,
    messageId: request.messageId === '' ? randomUUID() : request.messageId,
    sentAtMs: Date.now(),
    storage: storageOf(request, limits.inbox),
  };
}
