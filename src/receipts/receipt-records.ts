import type { MessageReceipt, ReceiptEvent, ReceiptEventKind, RemovalReason, SessionReceipt, StorageMode } from '../domain/receipts.js';

/**
 * How receipts are kept as text, by both stores: the fixed part and each session as JSON, so the
 * client's ack data (any JSON value) is stored as JSON text and every read hands out a fresh
 * parsed copy that callers cannot mutate into the store.
 */

type Removal = NonNullable<MessageReceipt['removed']>;

/** What never changes after `put`. */
interface FixedPart {
  readonly messageId: string;
  readonly userId: string;
  readonly event: string;
  readonly sentAtMs: number;
  readonly mode: StorageMode;
}

export function fixedJson(receipt: MessageReceipt): string {
  const { messageId, userId, event, sentAtMs, mode } = receipt;
  return JSON.stringify({ messageId, userId, event, sentAtMs, mode } satisfies FixedPart);
}

/** A session's entry as JSON; `ackData` is left out when undefined, so it reads back undefined. */
export function sessionJson(session: SessionReceipt): string {
  const { sessionId, clientType, nodeId, status, atMs, latencyUs, ackData, error, replay, attempt } = session;
  return JSON.stringify({ sessionId, clientType, nodeId, status, atMs, latencyUs, ackData, error, replay, attempt });
}

export function parseSession(json: string): SessionReceipt {
  const parsed = JSON.parse(json) as SessionReceipt;
  // JSON has no undefined: an entry stored without ack data gets the property back, as undefined.
  return { ...parsed, ackData: parsed.ackData };
}

export function removalJson(removed: Removal): string {
  return JSON.stringify({ reason: removed.reason, atMs: removed.atMs });
}

export function parseRemoval(json: string): Removal {
  return JSON.parse(json) as { reason: RemovalReason; atMs: number };
}

/** Builds a receipt from its stored parts; `sessions` are session JSON texts in the order first sent. */
export function makeReceipt(
  fixed: string,
  stored: boolean,
  expiresAtMs: number,
  removed: string | undefined,
  sessions: Iterable<string>,
): MessageReceipt {
  const parts = JSON.parse(fixed) as FixedPart;
  return {
    messageId: parts.messageId,
    userId: parts.userId,
    event: parts.event,
    sentAtMs: parts.sentAtMs,
    mode: parts.mode,
    stored,
    expiresAtMs,
    removed: removed === undefined ? undefined : parseRemoval(removed),
    sessions: Array.from(sessions, parseSession),
  };
}

/** The receipt's HASH fields (see lua/_common.lua) as a flat field, value list for HSET. */
export function receiptFields(receipt: MessageReceipt): string[] {
  const fields = ['f', fixedJson(receipt), 'stored', receipt.stored ? '1' : '0', 'x', String(receipt.expiresAtMs)];
  if (receipt.removed !== undefined) fields.push('rm', removalJson(receipt.removed));
  const seen = new Map<string, string>();
  for (const session of receipt.sessions) seen.set(session.sessionId, sessionJson(session));
  let ordinal = 0;
  for (const [sessionId, json] of seen) fields.push(`s:${sessionId}`, `${ordinal++} ${json}`);
  fields.push('ns', String(ordinal));
  return fields;
}

/** A receipt from its HASH as HGETALL returns it; undefined when the hash is gone. */
export function parseReceiptHash(hash: Readonly<Record<string, string>>): MessageReceipt | undefined {
  const fixed = hash.f;
  if (fixed === undefined) return undefined;
  const sessions: [number, string][] = [];
  for (const [field, value] of Object.entries(hash)) {
    if (!field.startsWith('s:')) continue;
    const space = value.indexOf(' ');
    sessions.push([Number(value.slice(0, space)), value.slice(space + 1)]);
  }
  sessions.sort((a, b) => a[0] - b[0]);
  return makeReceipt(
    fixed,
    hash.stored === '1',
    Number(hash.x ?? 0),
    hash.rm,
    sessions.map(([, json]) => json),
  );
}

/** A stream entry as XREAD / XRANGE return it. */
export type StreamEntry = [id: string, fields: string[]];

/** The stream fields of an event after kind (see lua/append-2.lua), as script arguments. */
export function eventArgs(event: Omit<ReceiptEvent, 'cursor'>): string[] {
  return [event.kind, event.messageId, event.userId, event.sessionId, event.clientType, String(event.atMs), event.replay ? '1' : '0'];
}

export function fieldOf(entry: StreamEntry, name: string): string | undefined {
  const fields = entry[1];
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

export function parseEventEntry(entry: StreamEntry, cursor: string): ReceiptEvent {
  return {
    cursor,
    kind: (fieldOf(entry, 'kind') ?? '') as ReceiptEventKind,
    messageId: fieldOf(entry, 'messageId') ?? '',
    userId: fieldOf(entry, 'userId') ?? '',
    sessionId: fieldOf(entry, 'sessionId') ?? '',
    clientType: fieldOf(entry, 'clientType') ?? '',
    atMs: Number(fieldOf(entry, 'atMs')),
    replay: fieldOf(entry, 'replay') === '1',
  };
}
