import type { PresenceEvent, PresenceKind } from '../domain/presence.js';
import type { SessionRecord } from '../domain/session.js';
import type { Reply } from '../redis/client.js';

/** How session records and presence events are stored in Redis, and read back. */

/** A stream entry as XREAD / XRANGE return it. */
export type StreamEntry = [id: string, fields: string[]];

/** The stored form: everything but last_seen_at, which lives in the `seen` hash. */
export function recordJson(session: SessionRecord): string {
  return JSON.stringify({
    sessionId: session.sessionId,
    userId: session.userId,
    clientType: session.clientType,
    nodeId: session.nodeId,
    connectedAtMs: session.connectedAtMs,
    remoteAddress: session.remoteAddress,
    userAgent: session.userAgent,
  });
}

export function parseRecord(json: string, lastSeen: string | null | undefined): SessionRecord {
  const stored = JSON.parse(json) as Omit<SessionRecord, 'lastSeenAtMs'>;
  const seen = Number(lastSeen);
  return {
    ...stored,
    lastSeenAtMs: lastSeen !== null && lastSeen !== undefined && lastSeen !== '' && seen > 0 ? seen : stored.connectedAtMs,
  };
}

/** A stored record, or undefined when what is stored is not one (written by hand): a read skips it rather than failing. */
export function readRecord(json: Reply, lastSeen: Reply): SessionRecord | undefined {
  if (typeof json !== 'string') return undefined;
  try {
    const record = parseRecord(json, lastSeen as string | null);
    return typeof record === 'object' && record !== null && typeof record.sessionId === 'string' ? record : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A user's sessions from their HASH as HGETALL returns it (flat field, value list; fields
 * `r:<sid>` record, `s:<sid>` last_seen_at, `o:<sid>` owner: see redis-keys.ts). A record that
 * does not parse, or names another session than its field, was written by hand: skipped.
 */
export function parseUserHash(flat: readonly Reply[]): SessionRecord[] {
  const found: SessionRecord[] = [];
  if (flat.length === 0) return found;
  const seen = new Map<string, Reply>();
  for (let i = 0; i < flat.length; i += 2) {
    const field = flat[i] as string;
    if (field.startsWith('s:')) seen.set(field.slice(2), flat[i + 1]!);
  }
  for (let i = 0; i < flat.length; i += 2) {
    const field = flat[i] as string;
    if (!field.startsWith('r:')) continue;
    const sessionId = field.slice(2);
    const record = readRecord(flat[i + 1]!, seen.get(sessionId) ?? null);
    if (record !== undefined && record.sessionId === sessionId) found.push(record);
  }
  return found;
}

/** The replies of a pipeline, or its first error. */
export function pipelineReplies(results: [Error | null, unknown][] | null): Reply[] {
  if (results === null) throw new Error('pipeline discarded');
  return results.map(([err, reply]) => {
    if (err !== null) throw err;
    return reply as Reply;
  });
}

export function fieldOf([, fields]: StreamEntry, name: string): string {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1]!;
  return '';
}

/** A stream entry as a presence event (field names: see src/registry/lua/_common.lua). */
export function parseEvent(entry: StreamEntry, cursor: string): PresenceEvent {
  const value = (name: string): string => fieldOf(entry, name);
  return {
    kind: value('k') as PresenceKind,
    userId: value('u'),
    // A record that does not parse (written into Redis by hand) is announced without its details.
    session: readRecord(value('s'), value('l')) ?? unreadableRecord(value('u')),
    reason: value('r'),
    atMs: Number(value('t')),
    sessionCount: Number(value('c')),
    cursor,
  };
}

/** Oldest connection first; ties broken by session id so every node orders alike. */
export function byConnection(a: SessionRecord, b: SessionRecord): number {
  return a.connectedAtMs - b.connectedAtMs || (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0);
}

function unreadableRecord(userId: string): SessionRecord {
  return { sessionId: '', userId, clientType: '', nodeId: '', connectedAtMs: 0, lastSeenAtMs: 0, remoteAddress: '', userAgent: '' };
}
