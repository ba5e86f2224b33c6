import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isReservedEvent } from '../domain/events.js';
import type { PushRequest, PushResult, StoragePolicy } from '../domain/push.js';
import { isWellFormed, MAX_USER_ID_LENGTH, type SessionRecord } from '../domain/session.js';
import { PushgateError } from '../errors.js';

/**
 * The JSON requests of the HTTP operator surfaces (the dashboard, and /dev/push of the demo page),
 * checked by the same rules as the gRPC API's (grpc/validate.ts, which http/ may not import): every
 * refusal names its field. Field names are the JSON ones these endpoints take (`user`, `event`, …).
 */

export interface HttpPushLimits {
  readonly clientTypes: readonly string[];
  readonly ackTimeoutMs: number;
  readonly maxAckTimeoutMs: number;
  readonly maxPayloadBytes: number;
  /** PUSHGATE_MAX_DATA_DEPTH: deeper `data` is refused, as the gRPC decoder refuses it. */
  readonly maxDataDepth: number;
  /** PUSHGATE_INBOX_TTL_S and PUSHGATE_INBOX_MAX_TTL_S, for pushes kept in the offline inbox. */
  readonly inbox: { readonly defaultTtlS: number; readonly maxTtlS: number };
}

const DELIVERY_MODES = ['live', 'store_if_unacked', 'store'] as const;

const MAX_EVENT_LENGTH = 128;
/** Room for the fields around `data` in a request body. */
const BODY_OVERHEAD_BYTES = 16 * 1024;
/** Longest kick notice: it travels to the client in the disconnect notice. */
const MAX_REASON_LENGTH = 256;

function invalid(message: string): PushgateError {
  return new PushgateError('invalid_argument', message);
}

/**
 * A request's JSON body, read up to a bound. Only `application/json` is taken: a browser cannot
 * send that cross-origin without a preflight this server never answers, so another site's page
 * cannot make an operator's browser push or kick.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    throw invalid(`the body must be JSON with content-type application/json, got "${type.slice(0, 64) || 'none'}"`);
  }
  const limit = maxBytes + BODY_OVERHEAD_BYTES;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      // Kept no further: Node discards the rest after the answer (bounded by the server's request timeout).
      throw new PushgateError('payload_too_large', `the body is over ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw invalid(`the body is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalid('the body must be a JSON object');
  return parsed as Record<string, unknown>;
}

export function requireUserId(value: unknown, field = 'user'): string {
  if (value === undefined || value === null || value === '') throw invalid(`${field} is required`);
  if (typeof value !== 'string') throw invalid(`${field} must be a string`);
  if (value.length > MAX_USER_ID_LENGTH) throw invalid(`${field} must be at most ${MAX_USER_ID_LENGTH} characters`);
  if (!isWellFormed(value)) throw invalid(`${field} is not well-formed Unicode (it holds a lone surrogate)`);
  return value;
}

function optionalString(body: Record<string, unknown>, field: string, max: number): string | undefined {
  const value = body[field];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw invalid(`${field} must be a string`);
  if (value.length > max) throw invalid(`${field} must be at most ${max} characters`);
  return value;
}

/** Lower-cased client types, each one of the configured list (a string or an array of strings). */
export function clientTypesFrom(value: unknown, allowed: readonly string[], field = 'clientTypes'): string[] {
  if (value === undefined || value === null || value === '') return [];
  const list = typeof value === 'string' ? value.split(',').filter((v) => v.trim() !== '') : value;
  if (!Array.isArray(list)) throw invalid(`${field} must be a list of client types`);
  return list.map((entry: unknown, i) => {
    const clientType = typeof entry === 'string' ? entry.trim().toLowerCase() : '';
    if (!allowed.includes(clientType)) {
      throw invalid(`${field}[${i}] "${String(entry).slice(0, 32)}" is not a known client type: use ${allowed.join(', ')}`);
    }
    return clientType;
  });
}

/** `{ user, event, data?, clientTypes?, ackTimeoutMs?, noAck?, messageId?, deliveryMode?, ttlSeconds? }` → a PushRequest. */
export function pushRequestFrom(body: Record<string, unknown>, limits: HttpPushLimits): PushRequest {
  const userId = requireUserId(body.user);
  const { event } = body;
  if (event === undefined || event === null || event === '') throw invalid('event is required');
  if (typeof event !== 'string') throw invalid('event must be a string');
  if (event.length > MAX_EVENT_LENGTH) throw invalid(`event must be at most ${MAX_EVENT_LENGTH} characters`);
  if (isReservedEvent(event)) {
    throw invalid(`event "${event}" is reserved by Socket.IO (v4, or v2 clients' lifecycle) or pushgate (pushgate:*); choose another name`);
  }
  const data = body.data === undefined ? null : body.data;
  // Depth first: measuring the size walks the value recursively.
  if (depthOf(data, limits.maxDataDepth) > limits.maxDataDepth) {
    throw invalid(`data is nested deeper than ${limits.maxDataDepth} levels (PUSHGATE_MAX_DATA_DEPTH)`);
  }
  const bytes = Buffer.byteLength(JSON.stringify(data));
  if (bytes > limits.maxPayloadBytes) {
    throw new PushgateError(
      'payload_too_large',
      `data is ${bytes} bytes encoded, over the limit of ${limits.maxPayloadBytes} (PUSHGATE_MAX_PAYLOAD_BYTES)`,
    );
  }
  const { ackTimeoutMs = 0, noAck = false } = body;
  if (typeof ackTimeoutMs !== 'number' || !Number.isSafeInteger(ackTimeoutMs) || ackTimeoutMs < 0) {
    throw invalid(`ackTimeoutMs must be a whole number of milliseconds, got ${JSON.stringify(ackTimeoutMs)}`);
  }
  if (ackTimeoutMs > limits.maxAckTimeoutMs) {
    throw invalid(`ackTimeoutMs must be at most ${limits.maxAckTimeoutMs} (PUSHGATE_MAX_ACK_TIMEOUT_MS), got ${ackTimeoutMs}`);
  }
  if (typeof noAck !== 'boolean') throw invalid('noAck must be true or false');
  const messageId = optionalString(body, 'messageId', MAX_USER_ID_LENGTH);
  return {
    userId,
    event,
    data,
    clientTypes: clientTypesFrom(body.clientTypes, limits.clientTypes),
    ackTimeoutMs: ackTimeoutMs === 0 ? limits.ackTimeoutMs : ackTimeoutMs,
    noAck,
    messageId: messageId ?? randomUUID(),
    sentAtMs: Date.now(),
    storage: storageFrom(body, noAck, limits.inbox),
  };
}

/**
 * `deliveryMode` and `ttlSeconds` → where the push is kept (undefined: live, the default), by the
 * gRPC API's rules (grpc/storage-options.ts): ttlSeconds only with a storing mode, never noAck with
 * one, at most PUSHGATE_INBOX_MAX_TTL_S, 0 or absent meaning PUSHGATE_INBOX_TTL_S. Any session's
 * ack removes it: these forms offer no other removal policy.
 */
function storageFrom(body: Record<string, unknown>, noAck: boolean, limits: HttpPushLimits['inbox']): StoragePolicy | undefined {
  const deliveryMode = body.deliveryMode ?? 'live';
  const ttlSeconds = body.ttlSeconds ?? 0;
  if (typeof deliveryMode !== 'string' || !(DELIVERY_MODES as readonly string[]).includes(deliveryMode)) {
    throw invalid(`deliveryMode must be one of ${DELIVERY_MODES.join(', ')}, got ${JSON.stringify(deliveryMode).slice(0, 64)}`);
  }
  if (typeof ttlSeconds !== 'number' || !Number.isSafeInteger(ttlSeconds) || ttlSeconds < 0) {
    throw invalid(`ttlSeconds must be a whole number of seconds, got ${JSON.stringify(ttlSeconds).slice(0, 64)}`);
  }
  if (deliveryMode === 'live') {
    if (ttlSeconds !== 0) throw invalid('ttlSeconds is only used with deliveryMode store_if_unacked or store');
    return undefined;
  }
  if (noAck) {
    throw invalid('noAck cannot be set with deliveryMode store_if_unacked or store: a stored message leaves the inbox when acked');
  }
  if (ttlSeconds > limits.maxTtlS) {
    throw invalid(`ttlSeconds must be at most ${limits.maxTtlS} (PUSHGATE_INBOX_MAX_TTL_S), got ${ttlSeconds}`);
  }
  const ttlS = ttlSeconds === 0 ? limits.defaultTtlS : ttlSeconds;
  return { mode: deliveryMode as StoragePolicy['mode'], ttlMs: ttlS * 1000, removal: 'any_session' };
}

export interface KickRequest {
  readonly userId: string;
  /** Empty: every session of the user. */
  readonly sessionIds: string[];
  readonly reason: string;
}

/** `{ user, sessionId?, reason? }`: one session, or every session of the user when sessionId is absent. */
export function kickRequestFrom(body: Record<string, unknown>): KickRequest {
  const userId = requireUserId(body.user);
  const sessionId = optionalString(body, 'sessionId', MAX_USER_ID_LENGTH);
  const reason = optionalString(body, 'reason', MAX_REASON_LENGTH) ?? 'kicked';
  return { userId, sessionIds: sessionId === undefined ? [] : [sessionId], reason };
}

/** A page size from the query: absent means the maximum, a larger one is lowered to it. */
export function pageSizeFrom(value: string | null, max: number): number {
  if (value === null || value === '') return max;
  const size = Number(value);
  if (!Number.isSafeInteger(size) || size < 0) throw invalid(`pageSize must be a whole number, got "${value.slice(0, 32)}"`);
  return size === 0 ? max : Math.min(size, max);
}

/** The JSON the endpoints answer a push with: per-session results in lookup order (oldest connection first). */
export function pushResultJson(result: PushResult): unknown {
  return {
    messageId: result.messageId,
    stored: result.stored,
    acked: result.acked,
    timedOut: result.timedOut,
    failed: result.failed,
    deliveries: result.deliveries.map((d) => ({
      session: sessionJson(d.session),
      status: d.status,
      latencyUs: d.latencyUs,
      ackData: d.ackData,
      error: d.error,
    })),
  };
}

export function sessionJson(s: SessionRecord): unknown {
  return {
    sessionId: s.sessionId,
    userId: s.userId,
    clientType: s.clientType,
    nodeId: s.nodeId,
    connectedAtMs: s.connectedAtMs,
    lastSeenAtMs: s.lastSeenAtMs,
    remoteAddress: s.remoteAddress,
    userAgent: s.userAgent,
  };
}

/** Nesting depth of a JSON value, counting stops once past `max` (a hostile value may be deep). */
function depthOf(value: unknown, max: number, depth = 0): number {
  if (value === null || typeof value !== 'object') return depth;
  if (depth >= max) return depth + 1;
  let deepest = depth + 1;
  for (const child of Array.isArray(value) ? value : Object.values(value)) {
    deepest = Math.max(deepest, depthOf(child, max, depth + 1));
    if (deepest > max) break;
  }
  return deepest;
}
