import { describe, expect, it } from 'vitest';
import { approximateEventBytes } from '../../src/domain/event-size.js';
import type { PresenceEvent, PresenceFeed, PresenceListener } from '../../src/domain/presence.js';
import { PresenceService, type PresenceServiceOptions, type PresenceWatch } from '../../src/domain/presence-service.js';
import type { SessionRecord } from '../../src/domain/session.js';
import { MemorySessionRegistry, type PresenceRetention } from '../../src/registry/memory-registry.js';
import { refusal } from '../support/refusal.js';
import { sessionRecord } from '../support/session-record.js';

/**
 * PresenceService over the real memory registry. Each test reads its watches one `next()` at a
 * time, so it decides exactly when the reader is behind, catching up or waiting.
 */

type Row = [kind: string, userId: string, sessionId: string | undefined, reason: string, sessionCount: number];

function row(event: PresenceEvent): Row {
  return [event.kind, event.userId, event.session?.sessionId, event.reason, event.sessionCount];
}

function record(userId: string, sessionId: string): SessionRecord {
  return sessionRecord(userId, sessionId);
}

/** Service options with bounds far away, except those a test sets. */
function options(feed: PresenceFeed, bounds: Partial<Omit<PresenceServiceOptions, 'feed'>> = {}): PresenceServiceOptions {
  return { feed, bufferSize: 100, bufferBytes: 1 << 30, maxStreams: 1000, maxStreamsPerCaller: 1000, ...bounds };
}

function setup(bufferSize = 100, retention?: PresenceRetention, bounds: Partial<Omit<PresenceServiceOptions, 'feed'>> = {}) {
  const registry = new MemorySessionRegistry(retention);
  const service = new PresenceService(options(registry, { bufferSize, ...bounds }));
  const connect = (userId: string, sessionId: string): Promise<void> => registry.register(record(userId, sessionId));
  const leave = (userId: string, sessionId: string, reason = 'client_disconnect'): Promise<unknown> =>
    registry.unregister(userId, sessionId, reason);
  return { registry, service, connect, leave };
}

const live = (): AbortSignal => new AbortController().signal;
const DONE: IteratorResult<PresenceEvent> = { value: undefined, done: true };

/** Settles with `promise`, or fails after `ms`: a read that should not wait fails the test quickly instead of hanging it. */
async function within<T>(what: string, promise: Promise<T>, ms = 1000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The next event; fails if the watch ended instead, or if none comes. */
async function next(watch: PresenceWatch): Promise<PresenceEvent> {
  const step = await within('a read', watch.next());
  if (step.done) throw new Error('the watch ended where an event was expected');
  return step.value;
}

/** The next read, which should end the watch. */
const end = (watch: PresenceWatch): Promise<IteratorResult<PresenceEvent>> => within('the end of the watch', watch.next());

async function read(watch: PresenceWatch, count: number): Promise<PresenceEvent[]> {
  const events: PresenceEvent[] = [];
  for (let i = 0; i < count; i++) events.push(await next(watch));
  return events;
}

/** Every event left, for a watch that was ended (endAll): it must end rather than wait. */
async function drain(watch: PresenceWatch): Promise<PresenceEvent[]> {
  const events: PresenceEvent[] = [];
  for (let step = await end(watch); !step.done; step = await end(watch)) events.push(step.value);
  return events;
}

/** Lets pending promise callbacks and I/O callbacks run once. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A feed whose snapshot waits for `release`, as a remote registry under load would. */
function slowSnapshot(registry: MemorySessionRegistry) {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let started!: () => void;
  const snapshotStarted = new Promise<void>((resolve) => (started = resolve));
  const feed: PresenceFeed = {
    position: async () => {
      started();
      await gate;
      return registry.position();
    },
    sessionsPage: (userIds, token, limit) => registry.sessionsPage(userIds, token, limit),
    readAfter: (cursor, limit) => registry.readAfter(cursor, limit),
    follows: (event, cursor) => registry.follows(event, cursor),
    subscribe: (listener) => registry.subscribe(listener),
    subscriberCount: () => registry.subscriberCount(),
  };
  return { feed, release, snapshotStarted };
}

/** A feed whose subscriptions get their events only on `flush`, late, as from a registry in another process. */
function lateDelivery(registry: MemorySessionRegistry) {
  const subscriptions = new Set<{ listener: PresenceListener; queue: PresenceEvent[] }>();
  const feed: PresenceFeed = {
    position: () => registry.position(),
    sessionsPage: (userIds, token, limit) => registry.sessionsPage(userIds, token, limit),
    readAfter: (cursor, limit) => registry.readAfter(cursor, limit),
    follows: (event, cursor) => registry.follows(event, cursor),
    subscribe: (listener) => {
      const subscription = { listener, queue: [] as PresenceEvent[] };
      const stop = registry.subscribe((event) => subscription.queue.push(event));
      subscriptions.add(subscription);
      return () => {
        stop();
        subscriptions.delete(subscription);
      };
    },
    subscriberCount: () => registry.subscriberCount(),
  };
  const flush = (): void => {
    for (const { listener, queue } of [...subscriptions]) for (const event of queue.splice(0)) listener(event);
  };
  return { feed, flush };
}

describe('PresenceService live watch', () => {
  it('yields the watched users’ events in order, none from before the watch began', async () => {
    const { registry, service, connect, leave } = setup();
    await connect('u1', 'before');
    const watch = service.watch({ caller: '', userIds: ['u1', 'u3'], from: { kind: 'live' } }, live());
    expect(registry.subscriberCount()).toBe(1);
    expect(service.size).toBe(1);

    await connect('u1', 's1');
    await connect('u2', 'x1');
    await connect('u3', 't1');
    await leave('u1', 'before', 'kicked');
    await leave('u1', 's1', 'heartbeat_timeout');

    expect((await read(watch, 6)).map(row)).toEqual([
      ['session_connected', 'u1', 's1', '', 2],
      ['user_online', 'u3', 't1', '', 1],
      ['session_connected', 'u3', 't1', '', 1],
      ['session_disconnected', 'u1', 'before', 'kicked', 1],
      ['session_disconnected', 'u1', 's1', 'heartbeat_timeout', 0],
      ['user_offline', 'u1', 's1', 'heartbeat_timeout', 0],
    ]);
    service.endAll();
    expect(await end(watch)).toEqual(DONE);
  });

  it('waits for the next event when none is queued', async () => {
    const { service, connect } = setup();
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'live' } }, live());
    let got: PresenceEvent | undefined;
    const pending = next(watch).then((event) => (got = event));

    await settle();
    expect(got).toBeUndefined();
    await connect('u1', 's1');
    await pending;
    expect(row(got!)).toEqual(['user_online', 'u1', 's1', '', 1]);
  });

  it('refuses to start for a signal already aborted, without subscribing', () => {
    const { registry, service } = setup();
    const controller = new AbortController();
    controller.abort();

    expect(() => service.watch({ caller: '', userIds: [], from: { kind: 'live' } }, controller.signal)).toThrow(
      expect.objectContaining({ code: 'cancelled' }),
    );
    expect(registry.subscriberCount()).toBe(0);
    expect(service.size).toBe(0);
  });
});

describe('PresenceService poll', () => {
  it('takes what is queued without waiting, in the order next() would, then leaves the wait to next()', async () => {
    const { service, connect, leave } = setup();
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'live' } }, live());
    expect(watch.poll()).toBeUndefined();
    await connect('u1', 's1');
    await leave('u1', 's1');

    const burst: PresenceEvent[] = [];
    for (let event = watch.poll(); event !== undefined; event = watch.poll()) burst.push(event);
    expect(burst.map(row)).toEqual([
      ['user_online', 'u1', 's1', '', 1],
      ['session_connected', 'u1', 's1', '', 1],
      ['session_disconnected', 'u1', 's1', 'client_disconnect', 0],
      ['user_offline', 'u1', 's1', 'client_disconnect', 0],
    ]);
    // Taken by poll, so no longer unread: next() waits for the next change.
    const pending = next(watch);
    await connect('u2', 'x1');
    expect(row(await pending)).toEqual(['user_online', 'u2', 'x1', '', 1]);
    service.endAll();
    expect(row(watch.poll()!)).toEqual(['session_connected', 'u2', 'x1', '', 1]);
    expect(await end(watch)).toEqual(DONE);
  });

  it('yields nothing while a snapshot is being caught up: next() keeps the order, poll() takes over once live', async () => {
    const { service, connect } = setup();
    await connect('u1', 's1');
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'snapshot' } }, live());
    expect(row(await next(watch))).toEqual(['session_connected', 'u1', 's1', 'snapshot', 1]);
    // After the snapshot's cursor: held live, and read from the feed by next().
    await connect('u2', 'x1');
    expect(watch.poll()).toBeUndefined();
    expect((await read(watch, 3)).map(row)).toEqual([
      ['snapshot_complete', '', undefined, '', 0],
      ['user_online', 'u2', 'x1', '', 1],
      ['session_connected', 'u2', 'x1', '', 1],
    ]);
    await connect('u3', 't1');
    // The catch-up ends inside a next(); from then on poll() takes the live queue.
    expect(watch.poll()).toBeUndefined();
    expect(row(await next(watch))).toEqual(['user_online', 'u3', 't1', '', 1]);
    expect(row(watch.poll()!)).toEqual(['session_connected', 'u3', 't1', '', 1]);
    expect(watch.poll()).toBeUndefined();
    service.endAll();
    expect(await end(watch)).toEqual(DONE);
  });

  it('leaves an overflow to next(), which throws presence_overflow', async () => {
    const { service, connect } = setup(3);
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'live' } }, live());
    await connect('u1', 's1');
    await connect('u1', 's2');
    await connect('u1', 's3');
    expect(watch.stopped.aborted).toBe(true);
    expect(watch.poll()).toBeUndefined();
    expect((await refusal(within('a read', watch.next()))).code).toBe('presence_overflow');
  });
});

describe('PresenceService snapshot and resume', () => {
  it('yields the snapshot, snapshot_complete with its cursor, then live events, with no duplicate and no gap around the snapshot', async () => {
    const { registry, service, connect, leave } = setup();
    await connect('u1', 's1');
    await connect('u2', 'x1');
    const watch = service.watch({ caller: '', userIds: ['u1'], from: { kind: 'snapshot' } }, live());
    // After the subscription but before the snapshot is read: in the snapshot, and delivered live too.
    await connect('u1', 's2');
    const snapshotCursor = await registry.position();

    const events = [await next(watch)];
    // While the snapshot is being read: after its cursor, so from the feed, and delivered live too.
    await connect('u1', 's3');
    await leave('u1', 's1');
    await connect('u2', 'x2');
    events.push(...(await read(watch, 3)));
    // While a feed event is being read: after the position the feed was read to.
    await connect('u1', 's4');
    events.push(...(await read(watch, 2)));
    // Live.
    await leave('u1', 's2', 'kicked');
    events.push(await next(watch));

    expect(events.map(row)).toEqual([
      ['session_connected', 'u1', 's1', 'snapshot', 2],
      ['session_connected', 'u1', 's2', 'snapshot', 2],
      ['snapshot_complete', '', undefined, '', 0],
      ['session_connected', 'u1', 's3', '', 3],
      ['session_disconnected', 'u1', 's1', 'client_disconnect', 2],
      ['session_connected', 'u1', 's4', '', 3],
      ['session_disconnected', 'u1', 's2', 'kicked', 2],
    ]);
    expect(events.slice(0, 3).map((e) => e.cursor)).toEqual([snapshotCursor, snapshotCursor, snapshotCursor]);
    // After the snapshot: exactly the feed's events for u1 after its cursor, each once.
    const feed = (await registry.readAfter(snapshotCursor, 100)).filter((e) => e.userId === 'u1');
    expect(events.slice(3).map((e) => e.cursor)).toEqual(feed.map((e) => e.cursor));

    service.endAll();
    expect(await end(watch)).toEqual(DONE);
  });

  it('yields a change made between the subscription and the snapshot once, in the snapshot', async () => {
    const { service, connect } = setup();
    await connect('u1', 's1');
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'snapshot' } }, live());
    await connect('u1', 's2');

    const events = await read(watch, 3);
    const pending = read(watch, 2); // nothing after the snapshot: catch-up ends, the read waits live
    await settle();
    await connect('u2', 'x1');
    events.push(...(await pending));

    expect(events.map(row)).toEqual([
      ['session_connected', 'u1', 's1', 'snapshot', 2],
      ['session_connected', 'u1', 's2', 'snapshot', 2],
      ['snapshot_complete', '', undefined, '', 0],
      ['user_online', 'u2', 'x1', '', 1],
      ['session_connected', 'u2', 'x1', '', 1],
    ]);
  });

  it('skips a live event delivered late, after the feed already yielded it', async () => {
    const registry = new MemorySessionRegistry();
    const { feed, flush } = lateDelivery(registry);
    const service = new PresenceService(options(feed, { bufferSize: 10 }));
    await registry.register(record('u1', 's0'));
    const cursor = await registry.position();
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'resume', cursor, name: 'resume_after' } }, live());
    await registry.register(record('u1', 's1')); // read from the feed; its live delivery comes later

    expect(row(await next(watch))).toEqual(['session_connected', 'u1', 's1', '', 2]);
    const pending = next(watch); // catch-up ends: from now on live
    await settle();
    flush();
    await registry.register(record('u1', 's2'));
    flush();

    expect(row(await pending)).toEqual(['session_connected', 'u1', 's2', '', 3]);
  });

  it('yields every session of every user for an empty user list, each with its user’s session count', async () => {
    const { service, connect } = setup();
    await connect('u1', 's1');
    await connect('u2', 'x1');
    await connect('u1', 's2');
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'snapshot' } }, live());

    expect((await read(watch, 4)).map(row)).toEqual([
      ['session_connected', 'u1', 's1', 'snapshot', 2],
      ['session_connected', 'u1', 's2', 'snapshot', 2],
      ['session_connected', 'u2', 'x1', 'snapshot', 1],
      ['snapshot_complete', '', undefined, '', 0],
    ]);
  });

  it('resumes after a cursor with exactly the events missed since, then live events', async () => {
    const { registry, service, connect, leave } = setup();
    const start = await registry.position();
    await connect('u1', 's1');
    const [, seen] = await registry.readAfter(start, 10);
    await connect('u1', 's2');
    await connect('u2', 'x1');
    await leave('u1', 's1');

    const watch = service.watch(
      { caller: '', userIds: ['u1'], from: { kind: 'resume', cursor: seen!.cursor, name: 'resume_after' } },
      live(),
    );
    await connect('u1', 's3'); // before the first read: from the feed and delivered live, yielded once
    const missed = await read(watch, 3);
    await connect('u1', 's4');
    const latest = await next(watch);

    expect([...missed, latest].map(row)).toEqual([
      ['session_connected', 'u1', 's2', '', 2],
      ['session_disconnected', 'u1', 's1', 'client_disconnect', 1],
      ['session_connected', 'u1', 's3', '', 2],
      ['session_connected', 'u1', 's4', '', 3],
    ]);
    service.endAll();
    expect(await end(watch)).toEqual(DONE);
  });

  it('refuses a malformed cursor at the first read with invalid_argument naming the field, and lets go of the subscription', async () => {
    const { registry, service } = setup();
    const watch = service.watch(
      { caller: '', userIds: [], from: { kind: 'resume', cursor: 'not-a-cursor', name: 'resume_after' } },
      live(),
    );

    const err = await refusal(within('a read', watch.next()));

    expect(err.code).toBe('invalid_argument');
    expect(err.message).toMatch(/^resume_after: /);
    expect(err.message).toContain('not-a-cursor');
    expect(registry.subscriberCount()).toBe(0);
    expect(service.size).toBe(0);
    expect(watch.stopped.aborted).toBe(true);
    expect(await end(watch)).toEqual(DONE);
  });

  it('refuses a cursor ahead of the feed with invalid_argument naming the field', async () => {
    const { registry, service } = setup();
    const ahead = (await registry.position()).replace(/-0$/, '-99');
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'resume', cursor: ahead, name: 'from_cursor' } }, live());

    const err = await refusal(within('a read', watch.next()));

    expect(err.code).toBe('invalid_argument');
    expect(err.message).toMatch(/^from_cursor: /);
  });

  it('refuses an expired cursor with cursor_expired and the oldest cursor still held', async () => {
    const { registry, service, connect } = setup(100, { retention: 3, retentionMs: 600_000 });
    const start = await registry.position();
    for (let i = 0; i < 3; i++) await connect('u1', `s${i}`); // events 1..4; 2..4 are kept
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'resume', cursor: start, name: 'resume_after' } }, live());

    const err = await refusal(within('a read', watch.next()));

    expect(err.code).toBe('cursor_expired');
    expect(err.message).toMatch(/^resume_after: /);
    expect(err.details.oldest_cursor).toBe(start.replace(/-0$/, '-1'));
    expect(err.message).toContain(err.details.oldest_cursor);
    expect(registry.subscriberCount()).toBe(0);
    expect(service.size).toBe(0);
    // The cursor it names works.
    const resumed = service.watch(
      { caller: '', userIds: [], from: { kind: 'resume', cursor: err.details.oldest_cursor!, name: 'resume_after' } },
      live(),
    );
    expect((await read(resumed, 3)).map((e) => e.session?.sessionId)).toEqual(['s0', 's1', 's2']);
  });

  it('streams a snapshot of several pages, reading a page only when the reader reaches it, each session with its user’s total', async () => {
    const registry = new MemorySessionRegistry();
    for (let i = 0; i < 700; i++) await registry.register(record('u1', `a${String(i).padStart(4, '0')}`));
    for (let i = 0; i < 400; i++) await registry.register(record('u2', `b${String(i).padStart(4, '0')}`));
    const pages: number[] = [];
    const feed: PresenceFeed = {
      position: () => registry.position(),
      sessionsPage: async (userIds, token, limit) => {
        const page = await registry.sessionsPage(userIds, token, limit);
        pages.push(page.sessions.length);
        return page;
      },
      readAfter: (cursor, limit) => registry.readAfter(cursor, limit),
      follows: (event, cursor) => registry.follows(event, cursor),
      subscribe: (listener) => registry.subscribe(listener),
      subscriberCount: () => registry.subscriberCount(),
    };
    const service = new PresenceService(options(feed, { bufferSize: 10 }));
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'snapshot' } }, live());

    const first = await read(watch, 500);
    expect(pages).toHaveLength(1);
    expect(pages[0]).toBeLessThanOrEqual(1000);
    const rest = await read(watch, 600);
    const complete = await next(watch);

    expect(pages.length).toBeGreaterThan(1);
    expect(complete.kind).toBe('snapshot_complete');
    const sessions = [...first, ...rest];
    expect(new Set(sessions.map((e) => e.session!.sessionId)).size).toBe(1100);
    // u1's sessions span pages; every one of them says u1 has 700.
    expect(sessions.filter((e) => e.userId === 'u1').every((e) => e.sessionCount === 700)).toBe(true);
    expect(sessions.filter((e) => e.userId === 'u2').every((e) => e.sessionCount === 400)).toBe(true);
    service.endAll();
    expect(await end(watch)).toEqual(DONE);
  });

  it('delivers a snapshot much larger than the buffer whole, one event per read', async () => {
    const { registry, service, connect } = setup(2);
    for (let i = 0; i < 40; i++) for (const user of ['u1', 'u2', 'u3']) await connect(user, `${user}-s${i}`);
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'snapshot' } }, live());

    const sessions = await read(watch, 120);
    // Live events while the snapshot is read wait, as long as they fit the buffer.
    await connect('u4', 'late');
    const complete = await next(watch);

    expect(sessions.every((e) => e.kind === 'session_connected' && e.reason === 'snapshot' && e.sessionCount === 40)).toBe(true);
    expect(new Set(sessions.map((e) => e.session!.sessionId)).size).toBe(120);
    expect(complete.kind).toBe('snapshot_complete');
    expect((await read(watch, 2)).map(row)).toEqual([
      ['user_online', 'u4', 'late', '', 1],
      ['session_connected', 'u4', 'late', '', 1],
    ]);
    expect(registry.subscriberCount()).toBe(1);
  });

  it('resumes over a backlog of several feed pages and many times the buffer, whole and in order', async () => {
    const { registry, service, connect } = setup(2);
    const start = await registry.position();
    for (let i = 0; i < 650; i++) await connect(i % 2 === 0 ? 'u1' : 'u2', `s${i}`);
    const backlog = await registry.readAfter(start, 10_000);
    expect(backlog).toHaveLength(652);
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'resume', cursor: start, name: 'resume_after' } }, live());

    const events = await read(watch, 652);
    await connect('u3', 'live');

    expect(events.map((e) => e.cursor)).toEqual(backlog.map((e) => e.cursor));
    expect((await read(watch, 2)).map(row)).toEqual([
      ['user_online', 'u3', 'live', '', 1],
      ['session_connected', 'u3', 'live', '', 1],
    ]);
  });
});

describe('PresenceService overflow', () => {
  it('lets a reader leave bufferSize events unread, and ends the watch at once at one more', async () => {
    const { registry, service, connect } = setup(3);
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'live' } }, live());
    let stoppedEvents = 0;
    watch.stopped.addEventListener('abort', () => stoppedEvents++);

    await connect('u1', 's1');
    await connect('u1', 's2'); // three unread: at the bound
    expect(registry.subscriberCount()).toBe(1);
    expect(watch.stopped.aborted).toBe(false);

    await connect('u1', 's3');
    // Let go at once, before any read: subscription, service entry, queue.
    expect(registry.subscriberCount()).toBe(0);
    expect(service.size).toBe(0);
    expect(watch.stopped.aborted).toBe(true);
    expect(stoppedEvents).toBe(1);

    const err = await refusal(within('a read', watch.next()));
    expect(err.code).toBe('presence_overflow');
    expect(err.message).toContain('3 events');
    expect(await end(watch)).toEqual(DONE);
  });

  it('counts only the events the reader has not taken yet', async () => {
    const { registry, service, connect } = setup(3);
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'live' } }, live());

    await connect('u1', 's0');
    const events = await read(watch, 2);
    for (let i = 1; i < 20; i++) {
      await connect('u1', `s${i}`);
      await connect('u2', `x${i}`);
      events.push(...(await read(watch, i === 1 ? 3 : 2)));
    }

    expect(events).toHaveLength(41);
    expect(registry.subscriberCount()).toBe(1);
    expect(watch.stopped.aborted).toBe(false);
  });

  it('does not count events of users it does not watch', async () => {
    const { registry, service, connect } = setup(2);
    const watch = service.watch({ caller: '', userIds: ['u1'], from: { kind: 'live' } }, live());

    for (let i = 0; i < 10; i++) await connect('u2', `x${i}`);

    expect(registry.subscriberCount()).toBe(1);
    await connect('u1', 's1');
    expect((await read(watch, 2)).map((e) => e.userId)).toEqual(['u1', 'u1']);
  });

  it('overflows while catching up when more than bufferSize events arrive during a slow read of the snapshot', async () => {
    const { registry, service, connect } = setup(3);
    await connect('u1', 's1');
    await connect('u1', 's2');
    const watch = service.watch({ caller: '', userIds: ['u1'], from: { kind: 'snapshot' } }, live());
    expect(row(await next(watch))).toEqual(['session_connected', 'u1', 's1', 'snapshot', 2]);

    for (let i = 3; i <= 5; i++) await connect('u1', `s${i}`); // three held: at the bound
    expect(registry.subscriberCount()).toBe(1);
    await connect('u1', 's6');

    expect(registry.subscriberCount()).toBe(0);
    expect(service.size).toBe(0);
    expect(watch.stopped.aborted).toBe(true);
    expect((await refusal(within('a read', watch.next()))).code).toBe('presence_overflow');
    expect(await end(watch)).toEqual(DONE);
  });

  it('overflows while the feed is slow to answer the snapshot; the waiting read then throws presence_overflow', async () => {
    const registry = new MemorySessionRegistry();
    const { feed, release, snapshotStarted } = slowSnapshot(registry);
    const service = new PresenceService(options(feed, { bufferSize: 2 }));
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'snapshot' } }, live());
    const pending = watch.next();
    await snapshotStarted;

    await registry.register(record('u1', 's1'));
    await registry.register(record('u1', 's2'));

    expect(registry.subscriberCount()).toBe(0);
    expect(service.size).toBe(0);
    expect(watch.stopped.aborted).toBe(true);
    release();
    expect((await refusal(within('the waiting read', pending))).code).toBe('presence_overflow');
    expect(await end(watch)).toEqual(DONE);
  });

  // The bound counts what the reader has not taken: held events it already took from the feed (in
  // the page being read, or while the held events drain after catch-up) do not count.
  it('does not count held events the reader already took from the feed page it is reading', async () => {
    const { registry, service, connect } = setup(3);
    const watch = service.watch({ caller: '', userIds: ['u1'], from: { kind: 'snapshot' } }, live());
    expect((await next(watch)).kind).toBe('snapshot_complete');

    // Each round one event arrives (two in the first) and one is read: never more than two unread.
    const events: PresenceEvent[] = [];
    for (let i = 1; i <= 3; i++) {
      await connect('u1', `s${i}`);
      events.push(await next(watch));
      expect(registry.subscriberCount()).toBe(1);
    }
    events.push(...(await read(watch, 1)));

    expect(events.map((e) => e.kind)).toEqual(['user_online', 'session_connected', 'session_connected', 'session_connected']);
  });

  it('does not count held events the reader already took while it drains them after catch-up', async () => {
    const { registry, service, connect } = setup(3);
    await connect('u1', 's0');
    const watch = service.watch({ caller: '', userIds: ['u1'], from: { kind: 'snapshot' } }, live());
    expect((await read(watch, 2)).map((e) => e.kind)).toEqual(['session_connected', 'snapshot_complete']);

    // Each round one event arrives and one is read: never more than one unread.
    const events: PresenceEvent[] = [];
    for (let i = 1; i <= 6; i++) {
      await connect('u1', `s${i}`);
      events.push(await next(watch));
      expect(registry.subscriberCount()).toBe(1);
    }

    expect(events.map((e) => e.session?.sessionId)).toEqual(['s1', 's2', 's3', 's4', 's5', 's6']);
  });
});

describe('PresenceService overflow in bytes', () => {
  /** About 2,100 bytes per event: four fit in 10,000 bytes, five do not. */
  const LONG_AGENT = 'Mozilla/5.0 '.repeat(170);
  const bytesBound = { bufferBytes: 10_000 };

  function longAgents(registry: MemorySessionRegistry) {
    return (userId: string, sessionId: string): Promise<void> =>
      registry.register(sessionRecord(userId, sessionId, { userAgent: LONG_AGENT }));
  }

  it('grows its estimate with the event’s strings, from a fixed overhead', () => {
    const base = {
      kind: 'session_connected',
      userId: 'u1',
      reason: '',
      atMs: 0,
      sessionCount: 1,
      cursor: 'c-1',
    } as const satisfies Omit<PresenceEvent, 'session'>;
    const short = approximateEventBytes({ ...base, session: record('u1', 's1') });
    const long = approximateEventBytes({ ...base, session: sessionRecord('u1', 's1', { userAgent: LONG_AGENT }) });

    expect(approximateEventBytes({ ...base, session: undefined })).toBeGreaterThan(0);
    expect(long - short).toBe(LONG_AGENT.length - 'agent'.length);
  });

  it('ends a live watch whose unread events pass bufferBytes, well before bufferSize, naming PUSHGATE_PRESENCE_BUFFER_BYTES', async () => {
    const { registry, service } = setup(100, undefined, bytesBound);
    const connect = longAgents(registry);
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'live' } }, live());

    await connect('u1', 's1'); // user_online + session_connected
    await connect('u1', 's2');
    await connect('u1', 's3'); // four unread, about 8,400 bytes: within the bound
    expect(registry.subscriberCount()).toBe(1);
    expect(watch.stopped.aborted).toBe(false);

    await connect('u1', 's4');
    // Let go at once, as for the event count: subscription, service entry, queue.
    expect(registry.subscriberCount()).toBe(0);
    expect(service.size).toBe(0);
    expect(watch.stopped.aborted).toBe(true);

    const err = await refusal(within('a read', watch.next()));
    expect(err.code).toBe('presence_overflow');
    expect(err.message).toContain('10000 bytes');
    expect(err.message).toContain('PUSHGATE_PRESENCE_BUFFER_BYTES');
    expect(await end(watch)).toEqual(DONE);
  });

  it('counts only the bytes the reader has not taken yet', async () => {
    const { registry, service } = setup(100, undefined, bytesBound);
    const connect = longAgents(registry);
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'live' } }, live());

    await connect('u1', 's0');
    const events = await read(watch, 2);
    for (let i = 1; i < 30; i++) {
      await connect('u1', `s${i}`);
      await connect('u2', `x${i}`);
      events.push(...(await read(watch, i === 1 ? 3 : 2)));
    }

    // About 125,000 bytes went through; never more than three events were unread.
    expect(events).toHaveLength(61);
    expect(registry.subscriberCount()).toBe(1);
    expect(watch.stopped.aborted).toBe(false);
  });

  it('does not count events of users it does not watch', async () => {
    const { registry, service } = setup(100, undefined, bytesBound);
    const connect = longAgents(registry);
    const watch = service.watch({ caller: '', userIds: ['u1'], from: { kind: 'live' } }, live());

    for (let i = 0; i < 20; i++) await connect('u2', `x${i}`);

    expect(registry.subscriberCount()).toBe(1);
    await connect('u1', 's1');
    expect((await read(watch, 2)).map((e) => e.userId)).toEqual(['u1', 'u1']);
  });

  it('overflows while catching up when the held events pass bufferBytes', async () => {
    const { registry, service } = setup(100, undefined, bytesBound);
    const connect = longAgents(registry);
    await connect('u1', 's1');
    const watch = service.watch({ caller: '', userIds: ['u1'], from: { kind: 'snapshot' } }, live());
    expect(row(await next(watch))).toEqual(['session_connected', 'u1', 's1', 'snapshot', 1]);

    for (let i = 2; i <= 5; i++) await connect('u1', `s${i}`); // four held: within the bound
    expect(registry.subscriberCount()).toBe(1);
    await connect('u1', 's6');

    expect(registry.subscriberCount()).toBe(0);
    expect(service.size).toBe(0);
    const err = await refusal(within('a read', watch.next()));
    expect(err.code).toBe('presence_overflow');
    expect(err.message).toContain('PUSHGATE_PRESENCE_BUFFER_BYTES');
  });

  it('acceptFinalBurst lets the shutdown burst pass bufferBytes too', async () => {
    const { registry, service } = setup(100, undefined, bytesBound);
    const connect = longAgents(registry);
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'live' } }, live());
    for (let i = 0; i < 3; i++) {
      await connect('u1', `s${i}`);
      await read(watch, i === 0 ? 2 : 1);
    }

    service.acceptFinalBurst();
    for (let i = 0; i < 3; i++) await registry.unregister('u1', `s${i}`, 'server_shutdown');
    await connect('u2', 'x1'); // six unread, about 12,600 bytes
    expect(watch.stopped.aborted).toBe(false);
    service.endAll();

    expect(await drain(watch)).toHaveLength(6);
  });
});

describe('PresenceService stream bounds', () => {
  it('refuses a watch over maxStreams with too_many_streams naming PUSHGATE_MAX_WATCH_STREAMS, without subscribing', () => {
    const { registry, service } = setup(100, undefined, { maxStreams: 2 });
    service.watch({ caller: '', userIds: [], from: { kind: 'live' } }, live());
    service.watch({ caller: 'billing', userIds: [], from: { kind: 'live' } }, live());

    for (const caller of ['', 'billing', 'other']) {
      let err: unknown;
      try {
        service.watch({ caller, userIds: [], from: { kind: 'live' } }, live());
      } catch (thrown) {
        err = thrown;
      }
      expect(err).toMatchObject({ code: 'too_many_streams' });
      expect((err as Error).message).toContain('2 presence streams');
      expect((err as Error).message).toContain('PUSHGATE_MAX_WATCH_STREAMS)');
    }
    expect(registry.subscriberCount()).toBe(2);
    expect(service.size).toBe(2);
  });

  it('refuses a named caller over maxStreamsPerCaller, while other callers and unnamed ones still open watches', () => {
    const { service } = setup(100, undefined, { maxStreams: 10, maxStreamsPerCaller: 2 });
    const open = (caller: string): PresenceWatch => service.watch({ caller, userIds: [], from: { kind: 'live' } }, live());
    open('billing');
    open('billing');

    expect(() => open('billing')).toThrow(
      expect.objectContaining({
        code: 'too_many_streams',
        message: expect.stringMatching(/caller "billing" already has 2 presence streams open.*PUSHGATE_MAX_WATCH_STREAMS_PER_CALLER/),
      }),
    );
    open('reports');
    // Unauthenticated callers (loopback, or explicitly allowed) share only the node's bound.
    for (let i = 0; i < 4; i++) open('');
    expect(service.size).toBe(7);
  });

  it('frees a slot whenever a watch ends: abort, return, overflow, endAll', async () => {
    const { registry, service, connect } = setup(1, undefined, { maxStreams: 1, maxStreamsPerCaller: 1 });
    const open = (signal = live()): PresenceWatch => service.watch({ caller: 'billing', userIds: [], from: { kind: 'live' } }, signal);

    const controller = new AbortController();
    open(controller.signal);
    expect(() => open()).toThrow(expect.objectContaining({ code: 'too_many_streams' }));
    controller.abort();

    const returned = open();
    await returned.return();

    const overflowed = open();
    await connect('u1', 's1'); // two events, one more than bufferSize
    expect(overflowed.stopped.aborted).toBe(true);

    open();
    service.endAll();

    open();
    expect(service.size).toBe(1);
    expect(registry.subscriberCount()).toBe(1);
  });
});

describe('PresenceService ending a watch', () => {
  it('ends on abort: the subscription is released and a waiting read resolves done', async () => {
    const { registry, service, connect } = setup();
    const controller = new AbortController();
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'live' } }, controller.signal);
    const pending = watch.next();
    await settle();

    controller.abort();

    expect(registry.subscriberCount()).toBe(0);
    expect(service.size).toBe(0);
    expect(watch.stopped.aborted).toBe(true);
    expect(await within('the waiting read', pending)).toEqual(DONE);
    await connect('u1', 's1');
    expect(await end(watch)).toEqual(DONE);
  });

  it('ends on abort while the snapshot is being taken: the waiting read resolves done', async () => {
    const registry = new MemorySessionRegistry();
    await registry.register(record('u1', 's1'));
    const { feed, release, snapshotStarted } = slowSnapshot(registry);
    const service = new PresenceService(options(feed, { bufferSize: 10 }));
    const controller = new AbortController();
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'snapshot' } }, controller.signal);
    const pending = watch.next();
    await snapshotStarted;

    controller.abort();
    expect(registry.subscriberCount()).toBe(0);
    expect(service.size).toBe(0);
    release();

    expect(await within('the waiting read', pending)).toEqual(DONE);
    expect(await end(watch)).toEqual(DONE);
  });

  it('ends when the reader returns, dropping what was queued', async () => {
    const { registry, service, connect } = setup();
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'live' } }, live());
    await connect('u1', 's1');

    expect(await watch.return()).toEqual(DONE);

    expect(registry.subscriberCount()).toBe(0);
    expect(service.size).toBe(0);
    expect(watch.stopped.aborted).toBe(true);
    expect(await end(watch)).toEqual(DONE);
  });

  it('ends when a for-await loop breaks', async () => {
    const { registry, service, connect } = setup();
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'live' } }, live());
    await connect('u1', 's1');

    const seen: PresenceEvent[] = [];
    for await (const event of watch) {
      seen.push(event);
      break;
    }

    expect(seen.map((e) => e.kind)).toEqual(['user_online']);
    expect(registry.subscriberCount()).toBe(0);
    expect(service.size).toBe(0);
  });

  it('endAll lets every reader take what was queued for it, then ends; later events are not delivered', async () => {
    const { registry, service, connect, leave } = setup();
    const all = service.watch({ caller: '', userIds: [], from: { kind: 'live' } }, live());
    const onlyU2 = service.watch({ caller: '', userIds: ['u2'], from: { kind: 'live' } }, live());
    await connect('u1', 's1');
    await connect('u2', 'x1');
    expect(service.size).toBe(2);

    service.endAll();
    expect(registry.subscriberCount()).toBe(0);
    expect(service.size).toBe(0);
    expect(all.stopped.aborted).toBe(true);
    await leave('u1', 's1');

    expect((await drain(all)).map(row)).toEqual([
      ['user_online', 'u1', 's1', '', 1],
      ['session_connected', 'u1', 's1', '', 1],
      ['user_online', 'u2', 'x1', '', 1],
      ['session_connected', 'u2', 'x1', '', 1],
    ]);
    expect((await drain(onlyU2)).map((e) => e.userId)).toEqual(['u2', 'u2']);
  });

  it('endAll wakes a reader waiting for an event', async () => {
    const { service } = setup();
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'live' } }, live());
    const pending = watch.next();
    await settle();

    service.endAll();

    expect(await within('the waiting read', pending)).toEqual(DONE);
  });

  it('acceptFinalBurst queues a burst far above bufferSize whole, for the reader to take after endAll', async () => {
    const { registry, service, connect, leave } = setup(3);
    const watch = service.watch({ caller: '', userIds: [], from: { kind: 'live' } }, live());
    for (let i = 0; i < 5; i++) {
      await connect('u1', `s${i}`);
      await read(watch, i === 0 ? 2 : 1);
    }

    service.acceptFinalBurst();
    for (let i = 0; i < 5; i++) await leave('u1', `s${i}`, 'server_shutdown');
    expect(registry.subscriberCount()).toBe(1);
    expect(watch.stopped.aborted).toBe(false);
    service.endAll();

    const burst = await drain(watch);
    expect(burst.map((e) => e.kind)).toEqual([...Array(5).fill('session_disconnected'), 'user_offline']);
    expect(burst.every((e) => e.reason === 'server_shutdown')).toBe(true);
  });
});
