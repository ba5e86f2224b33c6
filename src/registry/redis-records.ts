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

export function parseRecords(records: readonly Reply[], seen: readonly Reply[]): SessionRecord[] {
  const found: SessionRecord[] = [];
  records.forEach((json, i) => {
    // A session removed between the two reads of one script cannot happen; a null here is a set
    // member without a record, left by an interrupted write: skip it.
    if (typeof json === 'string') found.push(parseRecord(json, seen[i] as string | null));
  });
  return found;
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
    session: parseRecord(value('s'), value('l')),
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
