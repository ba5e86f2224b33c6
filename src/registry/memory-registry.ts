import { randomBytes } from 'node:crypto';
import { checkPageLimit, type PresenceEvent, type PresenceKind, type PresenceListener, type SessionsPage } from '../domain/presence.js';
import { matchesFilter, type SessionFilter, type SessionRecord } from '../domain/session.js';
import type { SessionRegistry } from '../domain/session-registry.js';
import { PushgateError } from '../errors.js';

/** How many recent presence events the registry keeps for `readAfter`. */
export interface PresenceRetention {
  /** At most this many events… */
  readonly retention: number;
  /** …and none older than this many milliseconds. */
  readonly retentionMs: number;
}

/** The defaults of PUSHGATE_PRESENCE_RETENTION and PUSHGATE_PRESENCE_RETENTION_MS. */
export const DEFAULT_RETENTION: PresenceRetention = Object.freeze({ retention: 10_000, retentionMs: 600_000 });

/** `<epoch>-<seq>`: the epoch is 16 hex digits, the seq a canonical decimal within the safe integers. */
const CURSOR = /^([0-9a-f]{16})-(0|[1-9][0-9]{0,14})$/;

/**
 * The embedded single-node registry. Every operation completes synchronously inside the returned
 * promise, so a `subscribe` followed by `position` and a first `sessionsPage` in the same tick sees
 * no change in between.
 *
 * Presence events are numbered 1, 2, 3… and kept in a ring of `retention` slots (event `seq` lives
 * in slot `seq % retention`); events older than `retentionMs` are dropped whenever the ring is
 * written or read, so no timer is needed. A cursor is `<epoch>-<seq>`, the position after event
 * `seq` (`<epoch>-0` before any event). The epoch is random per instance: a restarted node has
 * lost its events and must refuse cursors from its previous life rather than misread them.
 *
 * The ring holds each event's fields in one array per field, and `readAfter` makes the event
 * objects again: up to `retention` retained events were a large part of a node's idle memory as
 * objects (each with its cursor string and a boxed time), and far less as array slots.
 */
export class MemorySessionRegistry implements SessionRegistry {
  /** userId → sessionId → record; Map iteration order is insertion (connect) order. */
  private readonly users = new Map<string, Map<string, SessionRecord>>();
  /** User ids in order, for snapshot pages; rebuilt on the next page after a user came or went. */
  private sortedUsers: string[] | undefined;
  private readonly listeners = new Set<PresenceListener>();
  private readonly epoch = randomBytes(8).toString('hex');
  /** The ring, by slot: event kinds, sessions (undefined once dropped), reasons, times, session counts. */
  private readonly ringKinds: PresenceKind[] = [];
  private readonly ringSessions: (SessionRecord | undefined)[] = [];
  private readonly ringReasons: string[] = [];
  private readonly ringAtMs: number[] = [];
  private readonly ringCounts: number[] = [];
  /** Seq of the newest event; 0 before any. */
  private newestSeq = 0;
  /** Seq of the oldest event still held; `newestSeq + 1` when none is. */
  private oldestSeq = 1;

  constructor(
    private readonly retention: PresenceRetention = DEFAULT_RETENTION,
    private readonly onListenerError: (err: unknown) => void = () => {},
  ) {
    if (!Number.isSafeInteger(retention.retention) || retention.retention < 1 || !(retention.retentionMs >= 1)) {
      throw new RangeError(`presence retention must be at least one event and one millisecond, got ${JSON.stringify(retention)}`);
    }
  }

  async register(session: SessionRecord): Promise<void> {
    let sessions = this.users.get(session.userId);
    const first = sessions === undefined;
    if (sessions === undefined) {
      sessions = new Map();
      this.users.set(session.userId, sessions);
      this.sortedUsers = undefined;
    }
    const known = sessions.has(session.sessionId);
    sessions.set(session.sessionId, session);
    if (known) return;
    if (first) this.emit('user_online', session, '', 1);
    this.emit('session_connected', session, '', sessions.size);
  }

  async unregister(userId: string, sessionId: string, reason: string): Promise<SessionRecord | undefined> {
    const sessions = this.users.get(userId);
    const session = sessions?.get(sessionId);
    if (sessions === undefined || session === undefined) return undefined;
    sessions.delete(sessionId);
    if (sessions.size === 0) {
      this.users.delete(userId);
      this.sortedUsers = undefined;
    }
    this.emit('session_disconnected', session, reason, sessions.size);
    if (sessions.size === 0) this.emit('user_offline', session, reason, 0);
    return session;
  }

  async touch(userId: string, sessionId: string, atMs: number): Promise<void> {
    const session = this.users.get(userId)?.get(sessionId);
    if (session !== undefined && atMs > session.lastSeenAtMs) session.lastSeenAtMs = atMs;
  }

  async lookup(userId: string, filter?: SessionFilter): Promise<SessionRecord[]> {
    const sessions = this.users.get(userId);
    if (sessions === undefined) return [];
    const found: SessionRecord[] = [];
    for (const session of sessions.values()) {
      if (matchesFilter(session, filter)) found.push(session);
    }
    return found;
  }

  async lookupMany(userIds: readonly string[], filter?: SessionFilter): Promise<Map<string, SessionRecord[]>> {
    const found = new Map<string, SessionRecord[]>();
    for (const userId of userIds) if (!found.has(userId)) found.set(userId, await this.lookup(userId, filter));
    return found;
  }

  async position(): Promise<string> {
    return this.cursorAt(this.newestSeq);
  }

  /**
   * Users in code unit order, each user's sessions in session id order; the token is the last
   * session returned (`[user id, session id]` as JSON), so a page resumes after it whatever
   * changed meanwhile.
   */
  async sessionsPage(userIds: readonly string[], pageToken: string | undefined, limit: number): Promise<SessionsPage> {
    const max = checkPageLimit(limit);
    const after = pageToken === undefined ? undefined : parsePageToken(pageToken);
    if (userIds.length === 0 && this.sortedUsers === undefined) this.sortedUsers = [...this.users.keys()].sort();
    const users = userIds.length > 0 ? [...new Set(userIds)].sort() : this.sortedUsers!;
    const sessions: SessionRecord[] = [];
    const sessionCounts: number[] = [];
    let more = false;
    for (let i = after === undefined ? 0 : firstAtOrAfter(users, after[0]); i < users.length && !more; i++) {
      const found = this.users.get(users[i]!);
      if (found === undefined) continue;
      let ids = [...found.keys()].sort();
      if (after !== undefined && users[i] === after[0]) ids = ids.filter((id) => id > after[1]);
      for (const id of ids) {
        if (sessions.length === max) {
          more = true;
          break;
        }
        sessions.push(found.get(id)!);
        sessionCounts.push(found.size);
      }
      if (sessions.length === max && i + 1 < users.length) more = true;
    }
    const last = sessions.at(-1);
    return { sessions, sessionCounts, next: more && last !== undefined ? JSON.stringify([last.userId, last.sessionId]) : undefined };
  }

  async readAfter(cursor: string, limit: number): Promise<PresenceEvent[]> {
    const { epoch, seq } = this.parse(cursor);
    this.dropExpired(Date.now());
    if (epoch === this.epoch && seq > this.newestSeq) {
      throw new PushgateError(
        'invalid_argument',
        `presence cursor "${cursor}" is ahead of the newest event (${this.cursorAt(this.newestSeq)})`,
      );
    }
    // A reader at `seq` next needs event seq + 1; if that one is gone, it would miss events.
    if (epoch !== this.epoch || seq + 1 < this.oldestSeq) throw this.expired(cursor);
    const events: PresenceEvent[] = [];
    const last = Math.min(this.newestSeq, seq + Math.max(0, Math.floor(limit)));
    for (let next = seq + 1; next <= last; next++) events.push(this.eventAt(next));
    return events;
  }

  follows(event: PresenceEvent, cursor: string): boolean {
    return this.parse(event.cursor).seq > this.parse(cursor).seq;
  }

  subscribe(listener: PresenceListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  subscriberCount(): number {
    return this.listeners.size;
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  private emit(kind: PresenceKind, session: SessionRecord, reason: string, sessionCount: number): void {
    const atMs = Date.now();
    const seq = this.newestSeq + 1;
    this.append(seq, kind, session, reason, atMs, sessionCount);
    if (this.listeners.size === 0) return;
    const event: PresenceEvent = { kind, userId: session.userId, session, reason, atMs, sessionCount, cursor: this.cursorAt(seq) };
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  /** Stores event `seq` in the ring, overwriting the oldest when full, then drops what aged out. */
  private append(seq: number, kind: PresenceKind, session: SessionRecord, reason: string, atMs: number, sessionCount: number): void {
    const slot = seq % this.retention.retention;
    this.ringKinds[slot] = kind;
    this.ringSessions[slot] = session;
    this.ringReasons[slot] = reason;
    this.ringAtMs[slot] = atMs;
    this.ringCounts[slot] = sessionCount;
    this.newestSeq = seq;
    if (seq - this.oldestSeq + 1 > this.retention.retention) this.oldestSeq = seq - this.retention.retention + 1;
    this.dropExpired(atMs);
  }

  /** Event `seq`, which the ring holds. */
  private eventAt(seq: number): PresenceEvent {
    const slot = seq % this.retention.retention;
    const session = this.ringSessions[slot]!;
    return {
      kind: this.ringKinds[slot]!,
      userId: session.userId,
      session,
      reason: this.ringReasons[slot]!,
      atMs: this.ringAtMs[slot]!,
      sessionCount: this.ringCounts[slot]!,
      cursor: this.cursorAt(seq),
    };
  }

  private dropExpired(nowMs: number): void {
    const limitMs = nowMs - this.retention.retentionMs;
    while (this.oldestSeq <= this.newestSeq) {
      const slot = this.oldestSeq % this.retention.retention;
      if (this.ringAtMs[slot]! > limitMs) break;
      this.ringSessions[slot] = undefined; // let the session record go
      this.oldestSeq++;
    }
  }

  private expired(cursor: string): PushgateError {
    // Reading from here yields every event still held.
    const oldest = this.cursorAt(this.oldestSeq - 1);
    return new PushgateError(
      'cursor_expired',
      `presence cursor "${cursor}" is older than the retained events (or from before a restart); the oldest cursor still held is ${oldest}`,
      { details: { oldest_cursor: oldest } },
    );
  }

  private cursorAt(seq: number): string {
    return `${this.epoch}-${seq}`;
  }

  private parse(cursor: string): { epoch: string; seq: number } {
    const match = CURSOR.exec(cursor);
    if (match === null) throw new PushgateError('invalid_argument', `"${cursor.slice(0, 64)}" is not a presence cursor`);
    return { epoch: match[1]!, seq: Number(match[2]) };
  }
}

function parsePageToken(token: string): [string, string] {
  try {
    const parsed: unknown = JSON.parse(token);
    if (Array.isArray(parsed) && parsed.length === 2 && parsed.every((part) => typeof part === 'string')) return parsed as [string, string];
  } catch {
    // refused below
  }
  throw new PushgateError('invalid_argument', `"${token.slice(0, 64)}" is not a sessions page token`);
}

/** Index of the first of the sorted `values` not before `value`. */
function firstAtOrAfter(values: readonly string[], value: string): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (values[mid]! < value) low = mid + 1;
    else high = mid;
  }
  return low;
}
