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

export function parseRecords(records: readonly Reply[], seen: readonly Reply[]): SessionRecord[] {
  const found: SessionRecord[] = [];
  records.forEach((json, i) => {
    // A null here is an index entry without a record, left by an interrupted or hand-made write: skip it.
    const record = readRecord(json, seen[i]!);
    if (record !== undefined) found.push(record);
  });
  return found;
}

/** lookup-many-3's reply { counts, records, seen } as each user's records (users in the order passed to it). */
export function recordsByUser(users: readonly string[], [counts, records, seen]: readonly Reply[][]): [string, SessionRecord[]][] {
  let at = 0;
  return users.map((userId, u) => {
    const count = Number(counts![u]);
    const found = parseRecords(records!.slice(at, at + count), seen!.slice(at, at + count));
    at += count;
    return [userId, found];
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
