import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_SESSIONS_PAGE, type PresenceEvent, type PresenceKind } from '../../src/domain/presence.js';
import type { SessionRecord } from '../../src/domain/session.js';
import type { SessionRegistry } from '../../src/domain/session-registry.js';
import { refusal } from '../support/refusal.js';
import { waitFor } from '../support/wait.js';

/** How many presence events a registry keeps for `readAfter`: at most `retention`, none older than `retentionMs`. */
export interface RetentionOptions {
  readonly retention: number;
  readonly retentionMs: number;
}

/**
 * The behaviour every SessionRegistry must have (see src/registry/session-registry.ts). Run it from a
 * `*.test.ts` file with a factory that returns a fresh, empty registry for each call, keeping
 * presence events as `options` say (as PUSHGATE_PRESENCE_RETENTION and _MS would):
 *
 *   describeSessionRegistry('MemorySessionRegistry', async (options) => new MemorySessionRegistry(options));
 *
 * Most tests get generous retention; the retention tests ask for a few events. Every registry the
 * factory returns is closed after its test.
 *
 * Nothing here assumes events are delivered synchronously: the suite waits for events to arrive, and
 * proves that an operation emitted nothing by following it with a write to the same user whose
 * events must then be the first ones seen (events of one user arrive in the order of the changes).
 * Cursors are opaque: the suite only passes back cursors the registry handed out.
 */
export function describeSessionRegistry(name: string, factory: (options: RetentionOptions) => Promise<SessionRegistry>): void {
  describe(`SessionRegistry contract: ${name}`, () => {
    let registry: SessionRegistry;
    const unsubscribers: (() => void)[] = [];
    const extraRegistries: SessionRegistry[] = [];

    beforeEach(async () => {
      registry = await factory({ retention: 10_000, retentionMs: 600_000 });
    });

    afterEach(async () => {
      for (const stop of unsubscribers.splice(0)) stop();
      await registry.close();
      for (const extra of extraRegistries.splice(0)) await extra.close();
    });

    /** Another registry with the given retention, closed after the test. */
    async function registryWith(options: RetentionOptions): Promise<SessionRegistry> {
      const extra = await factory(options);
      extraRegistries.push(extra);
      return extra;
    }

    const base = Date.UTC(2024, 0, 1);

    /** A session as the edge would register it. Each call returns a new object. */
    function record(userId: string, sessionId: string, clientType = 'web', minute = 0): SessionRecord {
      return {
        sessionId,
        userId,
        clientType,
        nodeId: 'node-a',
        connectedAtMs: base + minute * 60_000,
        lastSeenAtMs: base + minute * 60_000,
        remoteAddress: '10.0.0.7',
        userAgent: `agent/${sessionId}`,
      };
    }

    /** Registers a copy, so the test's own record stays as written whatever the registry does with it. */
    async function register(session: SessionRecord): Promise<void> {
      await registry.register({ ...session });
    }

    /** Collects every event the registry delivers to one listener. */
    function collect(): PresenceEvent[] {
      const events: PresenceEvent[] = [];
      unsubscribers.push(registry.subscribe((event) => events.push(event)));
      return events;
    }

    function eventsOf(events: readonly PresenceEvent[], userId: string): PresenceEvent[] {
      return events.filter((event) => event.userId === userId);
    }

    async function waitForEvents(events: readonly PresenceEvent[], userId: string, count: number): Promise<PresenceEvent[]> {
      await waitFor(`${count} presence events for user ${userId}`, () => eventsOf(events, userId).length >= count);
      return eventsOf(events, userId);
    }

    /** kind / session id / count / reason of each event: what a presence consumer acts on. */
    function summary(events: readonly PresenceEvent[]): [PresenceKind, string | undefined, number, string][] {
      return events.map((event) => [event.kind, event.session?.sessionId, event.sessionCount, event.reason]);
    }

    function ids(sessions: readonly SessionRecord[]): string[] {
      return sessions.map((session) => session.sessionId);
    }

    /** A whole snapshot read page by page as a watcher reads it: sessions and their users' counts in page order. */
    async function snapshotOf(
      userIds: readonly string[],
      limit = MAX_SESSIONS_PAGE,
      from: SessionRegistry = registry,
    ): Promise<{ sessions: SessionRecord[]; counts: number[]; pages: number[] }> {
      const sessions: SessionRecord[] = [];
      const counts: number[] = [];
      const pages: number[] = [];
      let token: string | undefined;
      do {
        const page = await from.sessionsPage(userIds, token, limit);
        expect(page.sessions.length).toBeLessThanOrEqual(limit);
        expect(page.sessionCounts).toHaveLength(page.sessions.length);
        sessions.push(...page.sessions);
        counts.push(...page.sessionCounts);
        pages.push(page.sessions.length);
        token = page.next;
      } while (token !== undefined);
      return { sessions, counts, pages };
    }

    describe('register and lookup', () => {
      it('returns every session of a user, oldest connection first, with all fields as registered', async () => {
        const first = record('u1', 's-1', 'app', 1);
        const second = record('u1', 's-2', 'pc', 2);
        const third = record('u1', 's-3', 'web', 3);
        for (const session of [first, second, third]) await register(session);
        await register(record('u2', 's-other', 'web', 4));

        expect(await registry.lookup('u1')).toEqual([first, second, third]);
        expect(await registry.lookup('u1', {})).toEqual([first, second, third]);
        expect(ids(await registry.lookup('u2'))).toEqual(['s-other']);
      });

      it('returns nothing for a user without sessions', async () => {
        await register(record('u1', 's-1'));
        expect(await registry.lookup('nobody')).toEqual([]);
        expect(await registry.lookup('nobody', { clientTypes: ['web'] })).toEqual([]);
      });

      it('filters by client type', async () => {
        await register(record('u1', 's-app', 'app', 1));
        await register(record('u1', 's-pc', 'pc', 2));
        await register(record('u1', 's-web', 'web', 3));
        await register(record('u1', 's-app2', 'app', 4));

        expect(ids(await registry.lookup('u1', { clientTypes: ['app'] }))).toEqual(['s-app', 's-app2']);
        expect(ids(await registry.lookup('u1', { clientTypes: ['web', 'pc'] }))).toEqual(['s-pc', 's-web']);
        expect(ids(await registry.lookup('u1', { clientTypes: ['tv'] }))).toEqual([]);
        expect(ids(await registry.lookup('u1', { clientTypes: [] }))).toEqual(['s-app', 's-pc', 's-web', 's-app2']);
      });

      it('filters by session id, and by session id and client type together', async () => {
        await register(record('u1', 's-app', 'app', 1));
        await register(record('u1', 's-pc', 'pc', 2));
        await register(record('u1', 's-web', 'web', 3));
        await register(record('u2', 's-foreign', 'web', 4));

        expect(ids(await registry.lookup('u1', { sessionIds: ['s-web', 's-app'] }))).toEqual(['s-app', 's-web']);
        expect(ids(await registry.lookup('u1', { sessionIds: ['s-foreign'] }))).toEqual([]);
        expect(ids(await registry.lookup('u1', { sessionIds: [] }))).toEqual(['s-app', 's-pc', 's-web']);
        expect(ids(await registry.lookup('u1', { sessionIds: ['s-web', 's-app'], clientTypes: ['web'] }))).toEqual(['s-web']);
        expect(ids(await registry.lookup('u1', { sessionIds: ['s-pc'], clientTypes: ['web'] }))).toEqual([]);
      });
    });

    describe('lookupMany', () => {
      it('returns every given user, each with its sessions oldest first as lookup would, empty for users without sessions', async () => {
        await register(record('u1', 's-1a', 'web', 1));
        await register(record('u1', 's-1b', 'app', 2));
        await register(record('u2', 's-2', 'pc', 3));
        await register(record('u3', 's-3', 'web', 4));

        const found = await registry.lookupMany(['u1', 'nobody', 'u2', 'u1']);
        expect([...found.keys()].sort()).toEqual(['nobody', 'u1', 'u2']);
        expect(found.get('u1')).toEqual(await registry.lookup('u1'));
        expect(ids(found.get('u1')!)).toEqual(['s-1a', 's-1b']);
        expect(found.get('u2')).toEqual([record('u2', 's-2', 'pc', 3)]);
        expect(found.get('nobody')).toEqual([]);
        expect((await registry.lookupMany([])).size).toBe(0);
      });

      it('filters by client type, and keeps users apart whose ids share a prefix or hold NUL', async () => {
        const users = ['a', 'a\0', 'a\0b', 'ab', 'a b'];
        for (const [i, userId] of users.entries()) {
          await register(record(userId, `s-${i}-web`, 'web', i));
          await register(record(userId, `s-${i}-app`, 'app', i + 10));
        }
        const found = await registry.lookupMany(users, { clientTypes: ['app'] });
        for (const [i, userId] of users.entries()) expect(ids(found.get(userId)!)).toEqual([`s-${i}-app`]);
      });

      it('answers for many users across shards in one call', async () => {
        const users = Array.from({ length: 1500 }, (_, i) => `many-${i}`);
        await Promise.all(users.filter((_, i) => i % 3 === 0).map((userId, i) => register(record(userId, `s-${userId}`, 'web', i))));
        const found = await registry.lookupMany(users);
        expect(found.size).toBe(users.length);
        for (const [i, userId] of users.entries()) expect(ids(found.get(userId)!)).toEqual(i % 3 === 0 ? [`s-${userId}`] : []);
      });
    });

    describe('unregister', () => {
      it('removes the session and resolves to the removed record', async () => {
        const keep = record('u1', 's-keep', 'app', 1);
        const gone = record('u1', 's-gone', 'web', 2);
        await register(keep);
        await register(gone);

        expect(await registry.unregister('u1', 's-gone', 'client_disconnect')).toEqual(gone);
        expect(await registry.lookup('u1')).toEqual([keep]);
        expect(ids((await snapshotOf([])).sessions)).toEqual(['s-keep']);

        expect(await registry.unregister('u1', 's-keep', 'kicked')).toEqual(keep);
        expect(await registry.lookup('u1')).toEqual([]);
        expect((await snapshotOf([])).sessions).toEqual([]);
      });

      it('is a no-op for unknown ids: resolves to undefined, changes nothing and emits nothing', async () => {
        await register(record('u1', 's-1', 'web', 1));
        const events = collect();

        expect(await registry.unregister('u1', 's-unknown', 'client_disconnect')).toBeUndefined();
        expect(await registry.unregister('nobody', 's-1', 'client_disconnect')).toBeUndefined();
        // The right session id under the wrong user is not that session.
        expect(await registry.unregister('u2', 's-1', 'client_disconnect')).toBeUndefined();
        expect(ids(await registry.lookup('u1'))).toEqual(['s-1']);

        // Unregistering twice: the second call finds nothing.
        expect(await registry.unregister('u1', 's-1', 'client_disconnect')).toEqual(record('u1', 's-1', 'web', 1));
        expect(await registry.unregister('u1', 's-1', 'client_disconnect')).toBeUndefined();

        // A marker write to each user: the first events seen for u1 and nobody must be the real ones.
        await register(record('u1', 's-marker', 'web', 2));
        await register(record('nobody', 's-marker2', 'web', 2));
        await register(record('u2', 's-marker3', 'web', 2));
        expect(summary(await waitForEvents(events, 'u1', 4))).toEqual([
          ['session_disconnected', 's-1', 0, 'client_disconnect'],
          ['user_offline', 's-1', 0, 'client_disconnect'],
          ['user_online', 's-marker', 1, ''],
          ['session_connected', 's-marker', 1, ''],
        ]);
        expect(summary(await waitForEvents(events, 'nobody', 2))).toEqual([
          ['user_online', 's-marker2', 1, ''],
          ['session_connected', 's-marker2', 1, ''],
        ]);
        expect(summary(await waitForEvents(events, 'u2', 2))).toEqual([
          ['user_online', 's-marker3', 1, ''],
          ['session_connected', 's-marker3', 1, ''],
        ]);
      });
    });

    describe('register of a known session id', () => {
      it('replaces the record without emitting events or adding a session', async () => {
        await register(record('u1', 's-1', 'web', 1));
        await register(record('u1', 's-2', 'app', 2));
        const events = collect();

        const replacement = { ...record('u1', 's-1', 'web', 1), lastSeenAtMs: base + 10 * 60_000, userAgent: 'agent/replaced' };
        await register(replacement);

        const sessions = await registry.lookup('u1');
        expect(sessions).toHaveLength(2);
        expect(sessions.find((s) => s.sessionId === 's-1')).toEqual(replacement);
        expect(sessions.find((s) => s.sessionId === 's-2')).toEqual(record('u1', 's-2', 'app', 2));
        expect((await snapshotOf(['u1'])).sessions).toHaveLength(2);

        // The next real change is the first event, and its count shows the replacement added nothing.
        await register(record('u1', 's-3', 'pc', 3));
        expect(summary(await waitForEvents(events, 'u1', 1))).toEqual([['session_connected', 's-3', 3, '']]);
      });
    });

    describe('touch', () => {
      it('advances last_seen_at and leaves everything else as registered', async () => {
        const session = record('u1', 's-1', 'app', 1);
        await register(session);
        await register(record('u1', 's-2', 'web', 2));

        const later = base + 30 * 60_000;
        await registry.touch('u1', 's-1', later);

        const [touched, other] = await registry.lookup('u1');
        expect(touched).toEqual({ ...session, lastSeenAtMs: later });
        expect(other).toEqual(record('u1', 's-2', 'web', 2));
        expect((await snapshotOf(['u1'])).sessions[0]!.lastSeenAtMs).toBe(later);
      });

      it('never moves last_seen_at back', async () => {
        await register(record('u1', 's-1', 'app', 1));
        const later = base + 30 * 60_000;
        await registry.touch('u1', 's-1', later);
        await registry.touch('u1', 's-1', base + 5 * 60_000);
        expect((await registry.lookup('u1'))[0]!.lastSeenAtMs).toBe(later);
      });

      it('ignores unknown sessions: creates nothing and emits nothing', async () => {
        await register(record('u1', 's-1', 'app', 1));
        const events = collect();

        await registry.touch('u1', 's-unknown', base + 60 * 60_000);
        await registry.touch('nobody', 's-1', base + 60 * 60_000);

        expect(ids(await registry.lookup('u1'))).toEqual(['s-1']);
        expect((await registry.lookup('u1'))[0]!.lastSeenAtMs).toBe(base + 60_000);
        expect(await registry.lookup('nobody')).toEqual([]);
        expect((await snapshotOf([])).sessions).toHaveLength(1);

        await register(record('nobody', 's-marker', 'web', 2));
        expect(summary(await waitForEvents(events, 'nobody', 2))).toEqual([
          ['user_online', 's-marker', 1, ''],
          ['session_connected', 's-marker', 1, ''],
        ]);
        expect(eventsOf(events, 'u1')).toEqual([]);
      });
    });

    describe('snapshot', () => {
      async function registerPopulation(): Promise<void> {
        // Interleaved connects of three users.
        await register(record('a', 'a-1', 'app', 1));
        await register(record('b', 'b-1', 'web', 2));
        await register(record('a', 'a-2', 'pc', 3));
        await register(record('c', 'c-1', 'app', 4));
        await register(record('b', 'b-2', 'app', 5));
        await register(record('a', 'a-3', 'web', 6));
      }

      /** Asserts each user's sessions are contiguous in the list and returns them per user. */
      function grouped(sessions: readonly SessionRecord[]): Map<string, string[]> {
        const byUser = new Map<string, string[]>();
        let previous: string | undefined;
        for (const session of sessions) {
          if (session.userId !== previous && byUser.has(session.userId)) {
            throw new Error(`sessions of user ${session.userId} are not grouped: ${ids(sessions).join(', ')}`);
          }
          previous = session.userId;
          byUser.set(session.userId, [...(byUser.get(session.userId) ?? []), session.sessionId]);
        }
        return byUser;
      }

      it('returns every session of the given users, grouped by user, and nothing of others', async () => {
        await registerPopulation();

        const { sessions } = await snapshotOf(['a', 'c', 'nobody']);
        const byUser = grouped(sessions);
        expect([...byUser.keys()].sort()).toEqual(['a', 'c']);
        expect(byUser.get('a')!.sort()).toEqual(['a-1', 'a-2', 'a-3']);
        expect(byUser.get('c')).toEqual(['c-1']);
        expect(sessions.find((s) => s.sessionId === 'a-2')).toEqual(record('a', 'a-2', 'pc', 3));

        expect((await snapshotOf(['nobody'])).sessions).toEqual([]);
      });

      it('returns every session of every user when no user is given', async () => {
        await registerPopulation();
        await registry.unregister('b', 'b-1', 'client_disconnect');

        const { sessions } = await snapshotOf([]);
        const byUser = grouped(sessions);
        expect([...byUser.keys()].sort()).toEqual(['a', 'b', 'c']);
        expect(byUser.get('a')!.sort()).toEqual(['a-1', 'a-2', 'a-3']);
        expect(byUser.get('b')).toEqual(['b-2']);
        expect(byUser.get('c')).toEqual(['c-1']);
        expect(sessions).toHaveLength(5);
      });

      it('is empty for an empty registry', async () => {
        expect((await snapshotOf([])).sessions).toEqual([]);
        expect((await snapshotOf(['a'])).sessions).toEqual([]);
      });

      it('pages: at most limit sessions a page, each user’s in session id order, every session once, with its user’s total count', async () => {
        await registerPopulation();
        const whole = await snapshotOf([]);
        for (const limit of [1, 2, 4]) {
          const paged = await snapshotOf([], limit);
          expect(ids(paged.sessions), `limit ${limit}`).toEqual(ids(whole.sessions));
          expect(paged.counts, `limit ${limit}`).toEqual(whole.counts);
          expect(paged.pages.filter((n) => n > 0).length).toBeGreaterThanOrEqual(Math.ceil(6 / limit));
        }
        const byUser = grouped(whole.sessions);
        expect(byUser.get('a')).toEqual(['a-1', 'a-2', 'a-3']);
        expect(byUser.get('b')).toEqual(['b-1', 'b-2']);
        // a's three sessions span pages of two, yet each says a has three.
        const total: Record<string, number> = { a: 3, b: 2, c: 1 };
        expect(whole.counts).toEqual(whole.sessions.map((session) => total[session.userId]));
        const filtered = await snapshotOf(['c', 'a', 'a', 'nobody'], 2);
        expect(ids(filtered.sessions).sort()).toEqual(['a-1', 'a-2', 'a-3', 'c-1']);
        expect(filtered.counts).toEqual(filtered.sessions.map((session) => total[session.userId]));
      });

      it('resumes after the last session of a page even when that session left in between', async () => {
        await registerPopulation();
        const first = await registry.sessionsPage([], undefined, 2);
        expect(first.sessions).toHaveLength(2);
        const lastSeen = first.sessions[1]!;
        await registry.unregister(lastSeen.userId, lastSeen.sessionId, 'client_disconnect');
        const rest: SessionRecord[] = [];
        for (let token = first.next; token !== undefined; ) {
          const page = await registry.sessionsPage([], token, 2);
          rest.push(...page.sessions);
          token = page.next;
        }
        const all = ids([...first.sessions, ...rest]);
        expect(new Set(all).size).toBe(6);
        expect(all.sort()).toEqual(['a-1', 'a-2', 'a-3', 'b-1', 'b-2', 'c-1']);
      });

      it('converges with the feed after its position when changes land while pages are read', async () => {
        await registerPopulation();
        const cursor = await registry.position();
        const first = await registry.sessionsPage([], undefined, 3);
        await register(record('d', 'd-1', 'web', 7));
        await registry.unregister('a', 'a-1', 'kicked');
        await registry.unregister('c', 'c-1', 'kicked');
        const state = new Set(ids(first.sessions));
        for (let token = first.next; token !== undefined; ) {
          const page = await registry.sessionsPage([], token, 3);
          for (const session of page.sessions) state.add(session.sessionId);
          token = page.next;
        }
        const feed = await waitFor('the feed to hold the three changes', async () => {
          const events = await registry.readAfter(cursor, 100);
          return events.filter((event) => event.kind.startsWith('session_')).length >= 3 && events;
        });
        for (const event of feed) {
          if (event.kind === 'session_connected') state.add(event.session!.sessionId);
          if (event.kind === 'session_disconnected') state.delete(event.session!.sessionId);
        }
        expect([...state].sort()).toEqual(['a-2', 'a-3', 'b-1', 'b-2', 'd-1']);
      });

      it('refuses a limit out of 1…1000 and a token that is not one with invalid_argument', async () => {
        await registerPopulation();
        for (const limit of [0, -1, 1.5, MAX_SESSIONS_PAGE + 1, Number.NaN]) {
          expect((await refusal(registry.sessionsPage([], undefined, limit))).code, `limit ${limit}`).toBe('invalid_argument');
        }
        for (const token of ['', 'garbage', '[1]', '{"a":1}', '[99,0,""]']) {
          expect((await refusal(registry.sessionsPage([], token, 10))).code, `token ${token}`).toBe('invalid_argument');
        }
      });

      it('keeps users apart whose ids share a prefix or hold NUL and other control characters', async () => {
        const users = ['a', 'a\0', 'a\0b', 'a\0\0', 'ab', 'a\x01', '\0', 'a\u00e9'];
        for (const [i, userId] of users.entries()) {
          await register(record(userId, `s-${i}-1`, 'web', i));
          await register(record(userId, `s-${i}-2`, 'app', i));
        }
        for (const [i, userId] of users.entries()) {
          expect(ids(await registry.lookup(userId)).sort(), JSON.stringify(userId)).toEqual([`s-${i}-1`, `s-${i}-2`]);
        }
        // A session id under a user that merely shares a prefix is not that session.
        expect(await registry.unregister('a', 's-2-1', 'kicked')).toBeUndefined();
        expect(await registry.unregister('a\0', 's-2-1', 'kicked')).toBeUndefined();
        expect((await registry.unregister('a\0b', 's-2-1', 'kicked'))?.userId).toBe('a\0b');
        expect(ids(await registry.lookup('a\0b'))).toEqual(['s-2-2']);
        const { sessions, counts } = await snapshotOf([], 3);
        expect(sessions).toHaveLength(users.length * 2 - 1);
        grouped(sessions);
        expect(counts).toEqual(sessions.map((session) => (session.userId === 'a\0b' ? 1 : 2)));
        const some = await snapshotOf(['a\0', 'a'], 1);
        expect(ids(some.sessions).sort()).toEqual(['s-0-1', 's-0-2', 's-1-1', 's-1-2']);
      });
    });

    describe('presence events', () => {
      it('reports a user going 0 → 2 → 0 sessions in order, with the session count after each event', async () => {
        const events = collect();
        const first = record('u1', 's-1', 'app', 1);
        const second = record('u1', 's-2', 'web', 2);
        const before = Date.now();

        await register(first);
        await register(second);
        await registry.unregister('u1', 's-1', 'kicked');
        await registry.unregister('u1', 's-2', 'heartbeat_timeout');

        const seen = await waitForEvents(events, 'u1', 6);
        expect(summary(seen)).toEqual([
          ['user_online', 's-1', 1, ''],
          ['session_connected', 's-1', 1, ''],
          ['session_connected', 's-2', 2, ''],
          ['session_disconnected', 's-1', 1, 'kicked'],
          ['session_disconnected', 's-2', 0, 'heartbeat_timeout'],
          ['user_offline', 's-2', 0, 'heartbeat_timeout'],
        ]);
        expect(seen[0]!.session).toEqual(first);
        expect(seen[2]!.session).toEqual(second);
        expect(seen[5]!.session).toEqual(second);
        for (const event of seen) {
          expect(event.userId).toBe('u1');
          expect(event.atMs).toBeGreaterThanOrEqual(before - 1000);
          expect(event.atMs).toBeLessThanOrEqual(Date.now() + 1000);
        }
        expect(events).toHaveLength(6);
      });

      it('keeps each user’s order when users change at the same time', async () => {
        const events = collect();
        await Promise.all([
          (async () => {
            await register(record('x', 'x-1', 'app', 1));
            await registry.unregister('x', 'x-1', 'client_disconnect');
            await register(record('x', 'x-2', 'web', 2));
          })(),
          (async () => {
            await register(record('y', 'y-1', 'app', 1));
            await register(record('y', 'y-2', 'pc', 2));
            await registry.unregister('y', 'y-2', 'transport_error');
          })(),
        ]);

        expect(summary(await waitForEvents(events, 'x', 6))).toEqual([
          ['user_online', 'x-1', 1, ''],
          ['session_connected', 'x-1', 1, ''],
          ['session_disconnected', 'x-1', 0, 'client_disconnect'],
          ['user_offline', 'x-1', 0, 'client_disconnect'],
          ['user_online', 'x-2', 1, ''],
          ['session_connected', 'x-2', 1, ''],
        ]);
        expect(summary(await waitForEvents(events, 'y', 4))).toEqual([
          ['user_online', 'y-1', 1, ''],
          ['session_connected', 'y-1', 1, ''],
          ['session_connected', 'y-2', 2, ''],
          ['session_disconnected', 'y-2', 1, 'transport_error'],
        ]);
      });

      it('delivers every event to every listener', async () => {
        const one = collect();
        const two = collect();
        await register(record('u1', 's-1', 'app', 1));
        expect(summary(await waitForEvents(one, 'u1', 2))).toEqual(summary(await waitForEvents(two, 'u1', 2)));
        expect(one).toHaveLength(2);
      });

      it('does not let a throwing listener stop other listeners or the write', async () => {
        let thrown = 0;
        unsubscribers.push(
          registry.subscribe(() => {
            thrown++;
            throw new Error('listener bug');
          }),
        );
        const events = collect();

        await expect(registry.register(record('u1', 's-1', 'app', 1))).resolves.toBeUndefined();
        await expect(registry.unregister('u1', 's-1', 'client_disconnect')).resolves.toEqual(record('u1', 's-1', 'app', 1));

        expect(summary(await waitForEvents(events, 'u1', 4))).toEqual([
          ['user_online', 's-1', 1, ''],
          ['session_connected', 's-1', 1, ''],
          ['session_disconnected', 's-1', 0, 'client_disconnect'],
          ['user_offline', 's-1', 0, 'client_disconnect'],
        ]);
        await waitFor('the throwing listener to have been called for every event', () => thrown === 4);
        expect(await registry.lookup('u1')).toEqual([]);
      });
    });

    describe('presence feed', () => {
      /**
       * The summary plus the user. Cursors are left out: a live event and the same event read from
       * the feed may carry different (equally valid) cursors, e.g. one position per shard.
       */
      function described(events: readonly PresenceEvent[]): [PresenceKind, string, string | undefined, number, string][] {
        return events.map((event) => [event.kind, event.userId, event.session?.sessionId, event.sessionCount, event.reason]);
      }

      /** Every event after `cursor` in pages of `limit`, until a read comes back empty. */
      async function readToEnd(from: SessionRegistry, cursor: string, limit = 100): Promise<PresenceEvent[]> {
        const events: PresenceEvent[] = [];
        for (;;) {
          const page = await from.readAfter(cursor, limit);
          if (page.length === 0) return events;
          events.push(...page);
          cursor = page.at(-1)!.cursor;
        }
      }

      /** Reads the feed after `cursor` until it holds at least `count` events. */
      async function readAtLeast(from: SessionRegistry, cursor: string, count: number): Promise<PresenceEvent[]> {
        return waitFor(`${count} events in the feed`, async () => {
          const events = await readToEnd(from, cursor);
          return events.length >= count && events;
        });
      }

      it('gives every event a distinct cursor', async () => {
        const events = collect();
        await register(record('u1', 's-1', 'app', 1));
        await register(record('u1', 's-2', 'web', 2));
        await register(record('u2', 's-3', 'web', 3));
        await registry.unregister('u1', 's-1', 'kicked');
        await registry.unregister('u1', 's-2', 'kicked');

        await waitFor('8 presence events', () => events.length >= 8);
        const cursors = events.map((event) => event.cursor);
        for (const cursor of cursors) expect(cursor).toMatch(/\S/);
        expect(new Set(cursors).size).toBe(8);
      });

      it('reads back exactly the changes after a snapshot, each user’s in order, as subscribers saw them', async () => {
        await register(record('a', 'a-1', 'app', 1));
        await register(record('b', 'b-1', 'web', 2));
        const live = collect();
        const snapshot = { cursor: await registry.position() };
        await register(record('a', 'a-2', 'pc', 3));
        await registry.unregister('b', 'b-1', 'client_disconnect');
        await register(record('c', 'c-1', 'web', 4));
        await registry.unregister('a', 'a-1', 'kicked');

        const read = await readAtLeast(registry, snapshot.cursor, 6);
        expect(read).toHaveLength(6);
        // Order is promised per user (users may live in different partitions).
        expect(summary(eventsOf(read, 'a'))).toEqual([
          ['session_connected', 'a-2', 2, ''],
          ['session_disconnected', 'a-1', 1, 'kicked'],
        ]);
        expect(summary(eventsOf(read, 'b'))).toEqual([
          ['session_disconnected', 'b-1', 0, 'client_disconnect'],
          ['user_offline', 'b-1', 0, 'client_disconnect'],
        ]);
        expect(summary(eventsOf(read, 'c'))).toEqual([
          ['user_online', 'c-1', 1, ''],
          ['session_connected', 'c-1', 1, ''],
        ]);
        expect(read.find((event) => event.session?.sessionId === 'a-2')!.session).toEqual(record('a', 'a-2', 'pc', 3));
        for (const event of read) expect(registry.follows(event, snapshot.cursor)).toBe(true);
        // The feed and the subscription carry the same events.
        await waitFor('6 live events', () => live.length >= 6);
        for (const userId of ['a', 'b', 'c']) expect(described(eventsOf(read, userId))).toEqual(described(eventsOf(live, userId)));
      });

      it('reads nothing after the newest position, then the next change once it happens', async () => {
        const empty = { cursor: await registry.position() };
        expect(await registry.readAfter(empty.cursor, 10)).toEqual([]);

        await register(record('u1', 's-1', 'web', 1));
        const read = await readAtLeast(registry, empty.cursor, 2);
        expect(summary(read)).toEqual([
          ['user_online', 's-1', 1, ''],
          ['session_connected', 's-1', 1, ''],
        ]);
        expect(await registry.readAfter(read[1]!.cursor, 10)).toEqual([]);
        expect(await registry.readAfter(await registry.position(), 10)).toEqual([]);
      });

      it('resumes from a middle event’s cursor with every later event, in order', async () => {
        const live = collect();
        for (let i = 0; i < 5; i++) await register(record('u1', `s-${i}`, 'web', i));
        await registry.unregister('u1', 's-0', 'kicked');
        await waitFor('7 live events', () => live.length >= 7);

        const rest = await readAtLeast(registry, live[2]!.cursor, 4);
        expect(described(rest)).toEqual(described(live.slice(3)));
        expect(summary(rest)).toEqual([
          ['session_connected', 's-2', 3, ''],
          ['session_connected', 's-3', 4, ''],
          ['session_connected', 's-4', 5, ''],
          ['session_disconnected', 's-0', 4, 'kicked'],
        ]);
      });

      it('pages through the feed with limit', async () => {
        const start = await registry.position();
        for (let i = 0; i < 3; i++) await register(record(`u${i}`, `s-${i}`, 'web', i));
        await registry.unregister('u0', 's-0', 'client_disconnect');
        const all = await readAtLeast(registry, start, 8);

        const pages: PresenceEvent[][] = [];
        for (let cursor = start; ; ) {
          const page = await registry.readAfter(cursor, 3);
          if (page.length === 0) break;
          pages.push(page);
          cursor = page.at(-1)!.cursor;
        }
        expect(pages.map((page) => page.length)).toEqual([3, 3, 2]);
        expect(pages.flat().map((event) => event.cursor)).toEqual(all.map((event) => event.cursor));
        expect(described(pages.flat())).toEqual(described(all));
      });

      it('says an event follows a cursor exactly when it came after it', async () => {
        const before = await registry.position();
        const live = collect();
        await register(record('u1', 's-1', 'app', 1));
        await register(record('u2', 's-2', 'web', 2));
        await registry.unregister('u1', 's-1', 'client_disconnect');
        await waitFor('6 live events', () => live.length >= 6);
        const after = await registry.position();

        for (const [i, earlier] of live.entries()) {
          for (const [j, event] of live.entries()) {
            expect(registry.follows(event, earlier.cursor), `event ${j} follows event ${i}`).toBe(j > i);
          }
        }
        for (const event of live) {
          expect(registry.follows(event, before)).toBe(true);
          expect(registry.follows(event, after)).toBe(false);
        }
      });

      it('refuses a string that is not a cursor with invalid_argument', async () => {
        for (const bad of ['', 'not a cursor', '%%%', 'x'.repeat(300)]) {
          const err = await refusal(registry.readAfter(bad, 10));
          expect(err.code, `readAfter(${JSON.stringify(bad.slice(0, 20))})`).toBe('invalid_argument');
        }
      });

      it('refuses a cursor older than the retention window with cursor_expired, naming the oldest cursor still held, which it reads from', async () => {
        const small = await registryWith({ retention: 3, retentionMs: 600_000 });
        const start = await small.position();
        await small.register(record('u1', 's-0', 'web', 0));
        // Read while still retained: the cursors of the first two events.
        const early = await readAtLeast(small, start, 2);
        for (let i = 1; i < 6; i++) await small.register(record('u1', `s-${i}`, 'web', i));
        const all = [['user_online', 's-0', 1, ''], ...Array.from({ length: 6 }, (_, i) => ['session_connected', `s-${i}`, i + 1, ''])];

        const err = await refusal(small.readAfter(start, 10));
        expect(err.code).toBe('cursor_expired');
        const oldest = err.details.oldest_cursor;
        expect(oldest).toMatch(/\S/);
        expect(err.message).toContain(oldest);
        // An early event's own cursor is as stale as the start.
        expect((await refusal(small.readAfter(early[1]!.cursor, 10))).code).toBe('cursor_expired');

        // From the named cursor the feed yields the newest events, at most the retention, in order.
        const held = await small.readAfter(oldest!, 10);
        expect(held.length).toBeGreaterThan(0);
        expect(held.length).toBeLessThanOrEqual(3);
        expect(summary(held)).toEqual(all.slice(-held.length));
      });
    });

    describe('subscriptions', () => {
      it('counts subscribers, and an unsubscribed listener receives nothing more', async () => {
        const baseline = registry.subscriberCount();
        const stopped: PresenceEvent[] = [];
        const stop = registry.subscribe((event) => stopped.push(event));
        const kept = collect();
        expect(registry.subscriberCount()).toBe(baseline + 2);

        await register(record('u1', 's-1', 'app', 1));
        await waitForEvents(stopped, 'u1', 2);
        await waitForEvents(kept, 'u1', 2);

        stop();
        expect(registry.subscriberCount()).toBe(baseline + 1);
        // Stopping twice is harmless and does not remove another subscription.
        stop();
        expect(registry.subscriberCount()).toBe(baseline + 1);

        await register(record('u1', 's-2', 'web', 2));
        await registry.unregister('u1', 's-1', 'client_disconnect');
        // The still-subscribed listener sees these changes; the stopped one never does.
        expect(summary(await waitForEvents(kept, 'u1', 4)).slice(2)).toEqual([
          ['session_connected', 's-2', 2, ''],
          ['session_disconnected', 's-1', 1, 'client_disconnect'],
        ]);
        expect(stopped).toHaveLength(2);

        unsubscribers.pop()!();
        expect(registry.subscriberCount()).toBe(baseline);
      });
    });
  });
}
