import { afterEach, describe, expect, it } from 'vitest';
import type { MessageReceipt, NewReceiptEvent, ReceiptEvent, ReceiptStore, SessionReceipt } from '../../src/domain/receipts.js';
import { waitFor } from '../support/wait.js';

/** How many events, and for how long, a deployment keeps for `readAfter`. */
export interface EventRetention {
  readonly retention: number;
  readonly retentionMs: number;
}

/** Stores for the nodes of one deployment, on storage no other deployment sees. */
export interface ReceiptDeployment {
  /** The store of one more node, started: each shares the others' receipts and events (the memory store serves one node, so it hands out itself). */
  store(): Promise<ReceiptStore>;
  /** Whether `store()` gives separate nodes (then events appended on one reach listeners on another). */
  readonly nodes: boolean;
  /** What the deployment's stores left open after they were closed (reader connections not ended); [] when nothing. */
  leftovers(): string[];
  /** Releases what the deployment holds (command connections), after every store it handed out is closed. */
  close(): Promise<void>;
}

/**
 * The behaviour every ReceiptStore must have (the contract comment in src/domain/receipts.ts). Run
 * it from a `*.test.ts` file with a factory that returns a fresh deployment, with the given event
 * retention, for each call:
 *
 *   describeReceiptStore('MemoryReceiptStore', async (retention) => memoryDeployment(retention));
 *
 * Retentions that must end within a test are short (200–300 ms); ones that must not end are long
 * (a minute). Waits are bounded by a generous deadline, not by fixed sleeps.
 */
export function describeReceiptStore(name: string, factory: (retention: EventRetention) => Promise<ReceiptDeployment>): void {
  describe(`ReceiptStore contract: ${name}`, () => {
    const LONG_MS = 60_000;
    const KEEP: EventRetention = { retention: 10_000, retentionMs: LONG_MS };
    const deployments: ReceiptDeployment[] = [];
    const opened = new Set<ReceiptStore>();

    afterEach(async () => {
      for (const s of opened) await s.close();
      opened.clear();
      for (const d of deployments.splice(0)) await d.close();
    });

    async function deploy(retention = KEEP): Promise<ReceiptDeployment> {
      const deployment = await factory(retention);
      deployments.push(deployment);
      return deployment;
    }

    async function node(deployment: ReceiptDeployment): Promise<ReceiptStore> {
      const s = await deployment.store();
      opened.add(s);
      return s;
    }

    async function oneStore(retention = KEEP): Promise<ReceiptStore> {
      return node(await deploy(retention));
    }

    /** Events a listener was told, and its unsubscribe. */
    function listen(on: ReceiptStore): { events: ReceiptEvent[]; stop: () => void } {
      const events: ReceiptEvent[] = [];
      return { events, stop: on.subscribe((event) => events.push(event)) };
    }

    async function rejection(call: Promise<unknown>): Promise<unknown> {
      return call.then(
        () => undefined,
        (err: unknown) => err,
      );
    }

    it('gives back what was put: every field, ack data of any JSON shape, ids of any characters', async () => {
      const store = await oneStore();
      const shapes: unknown[] = [
        undefined,
        null,
        0,
        -1.5,
        'ok',
        '',
        true,
        false,
        [],
        [1, 'two', { three: [null] }],
        {},
        { nested: { a: [1, { b: 'ü' }] } },
      ];
      const messageId = 'msg-😀-{tag}-%7B-\0-日本';
      const receipt = receiptOf(messageId, {
        userId: 'user-{é}\0',
        stored: true,
        expiresAtMs: 1_800_000_000_123,
        removed: { reason: 'acked', atMs: 1_800_000_000_456 },
        sessions: shapes.map((ackData, i) =>
          session(`s${i}-ñ`, { ackData, status: i % 2 === 0 ? 'acked' : 'pending', replay: i % 3 === 0 }),
        ),
      });
      await store.put(receipt, LONG_MS);

      expect(await store.get(messageId)).toEqual(receipt);
      expect((await store.get(messageId))?.sessions.map((s) => s.ackData)).toEqual(shapes);
      expect(await store.get('msg-😀-{tag}-{7B-\0-日本')).toBeUndefined();
      expect(await store.get('unknown')).toBeUndefined();

      // A lone surrogate is not the replacement character it would become as UTF-8.
      await store.put(receiptOf('lone-\ud800'), LONG_MS);
      expect(await store.get('lone-\ud800')).toEqual(receiptOf('lone-\ud800'));
      expect(await store.get('lone-\ufffd')).toBeUndefined();
    });

    it('keeps its own copy: neither what was put nor what get returned can be changed into the store', async () => {
      const store = await oneStore();
      const ackData = { list: [1, 2] };
      const sessions = [session('a', { ackData })];
      const receipt = receiptOf('m1', { sessions });
      await store.put(receipt, LONG_MS);
      ackData.list.push(3);
      sessions.push(session('b'));

      const got = (await store.get('m1'))!;
      (got.sessions as SessionReceipt[]).push(session('c'));
      ((got.sessions[0]!.ackData as { list: number[] }).list as number[]).push(4);

      expect(await store.get('m1')).toEqual(receiptOf('m1', { sessions: [session('a', { ackData: { list: [1, 2] } })] }));
    });

    it('keeps thousands of sessions in the order first sent, through puts and updates', async () => {
      const store = await oneStore();
      const sessions = Array.from({ length: 3000 }, (_, i) => session(`s${(i * 7919) % 3000}`));
      await store.put(receiptOf('big', { sessions }), LONG_MS);
      const later = session('late');
      const replaced = session(sessions[1500]!.sessionId, { status: 'acked' });
      await store.update('big', { sessions: [later, replaced] }, undefined);

      const expected = [...sessions.slice(0, 1500), replaced, ...sessions.slice(1501), later];
      expect((await store.get('big'))?.sessions).toEqual(expected);
    });

    it('replaces a whole receipt on a second put', async () => {
      const store = await oneStore();
      await store.put(receiptOf('m1', { sessions: [session('a'), session('b')], stored: true }), LONG_MS);
      const second = receiptOf('m1', { sessions: [session('c')], event: 'other' });
      await store.put(second, LONG_MS);
      expect(await store.get('m1')).toEqual(second);
    });

    it('updates a receipt: adds a session after the others, replaces one in its place, sets stored, expiry and removal', async () => {
      const store = await oneStore();
      const original = receiptOf('m1', { sessions: [session('a'), session('b')] });
      await store.put(original, LONG_MS);

      const c = session('c', { status: 'acked', ackData: ['late'], latencyUs: 1200 });
      await store.update('m1', { sessions: [c] }, undefined);
      expect((await store.get('m1'))?.sessions).toEqual([session('a'), session('b'), c]);

      const a2 = session('a', { status: 'acked', replay: true, attempt: 2, ackData: { ok: 1 } });
      await store.update('m1', { sessions: [a2] }, undefined);
      expect((await store.get('m1'))?.sessions).toEqual([a2, session('b'), c]);

      await store.update('m1', { stored: true, expiresAtMs: 1_900_000_000_000 }, undefined);
      expect(await store.get('m1')).toEqual({ ...original, sessions: [a2, session('b'), c], stored: true, expiresAtMs: 1_900_000_000_000 });

      // Several at once: a new one and a replaced one; of two entries for one session, the later wins.
      const b2 = session('b', { status: 'timeout' });
      const d = session('d', { status: 'disconnected', error: 'gone' });
      await store.update('m1', { sessions: [d, session('b', { status: 'failed' }), b2] }, undefined);
      expect((await store.get('m1'))?.sessions).toEqual([a2, b2, c, d]);

      const removed = { reason: 'expired', atMs: 1_900_000_000_001 } as const;
      await store.update('m1', { stored: false, removed }, event('expired', 'm1'));
      expect(await store.get('m1')).toEqual({
        ...original,
        sessions: [a2, b2, c, d],
        stored: false,
        expiresAtMs: 1_900_000_000_000,
        removed,
      });
    });

    it('appends the event of an update even when the receipt is not kept, and keeps no receipt for it', async () => {
      const store = await oneStore();
      const start = await store.position();
      await store.update('never-put', { sessions: [session('a')], stored: true }, event('acked', 'never-put', 'a'));

      expect(await store.get('never-put')).toBeUndefined();
      expect(plain(await store.readAfter(start, 10))).toEqual([event('acked', 'never-put', 'a')]);
    });

    it('forgets a receipt after its retention', async () => {
      const store = await oneStore();
      await store.put(receiptOf('short'), 200);
      await store.put(receiptOf('long'), LONG_MS);
      expect(await store.get('short')).toBeDefined();

      await waitFor('the short receipt to go', async () => (await store.get('short')) === undefined, { timeoutMs: 3000 });
      await store.update('short', { stored: true }, undefined);
      expect(await store.get('short')).toBeUndefined();
      expect(await store.get('long')).toEqual(receiptOf('long'));
    });

    it('gives events increasing cursors; readAfter returns exactly the events after a cursor, in order, in pages', async () => {
      const store = await oneStore();
      const start = await store.position();
      const appended = [event('stored', 'm1'), event('acked', 'm1', 's1', true), event('dropped', 'm2'), event('deleted', 'm3')];
      for (const e of appended) await store.update(e.messageId, {}, e);

      const all = await store.readAfter(start, 100);
      expect(plain(all)).toEqual(appended);
      expect(new Set(all.map((e) => e.cursor)).size).toBe(4);
      expect(await store.position()).toBe(all[3]!.cursor);
      expect(await store.readAfter(all[3]!.cursor, 100)).toEqual([]);
      for (let i = 0; i < all.length; i++) expect(await store.readAfter(all[i]!.cursor, 100)).toEqual(all.slice(i + 1));

      const first = await store.readAfter(start, 3);
      expect(first).toEqual(all.slice(0, 3));
      expect(await store.readAfter(first[2]!.cursor, 3)).toEqual(all.slice(3));
      expect(await store.readAfter(start, 0)).toEqual([]);
    });

    it('refuses a cursor whose next event was trimmed by count with cursor_expired, and serves the oldest one held', async () => {
      const store = await oneStore({ retention: 3, retentionMs: LONG_MS });
      const start = await store.position();
      // cursors[i]: the position after event i (the deployment has no other writer).
      const cursors = [start];
      for (let i = 1; i <= 5; i++) {
        await store.update(`m${i}`, {}, event('stored', `m${i}`));
        cursors.push(await store.position());
      }

      for (const old of [start, cursors[1]!]) expect(await rejection(store.readAfter(old, 10))).toMatchObject({ code: 'cursor_expired' });
      // Events 3, 4, 5 are held: a reader that saw event 2 misses nothing.
      expect(plain(await store.readAfter(cursors[2]!, 10)).map((e) => e.messageId)).toEqual(['m3', 'm4', 'm5']);
    });

    it('refuses a cursor whose next event aged out with cursor_expired', async () => {
      const store = await oneStore({ retention: 100, retentionMs: 250 });
      const start = await store.position();
      await store.update('m1', {}, event('stored', 'm1'));
      expect(await store.readAfter(start, 10)).toHaveLength(1);

      await waitFor('the event to age out', async () => (await rejection(store.readAfter(start, 10))) !== undefined, { timeoutMs: 3000 });
      expect(await rejection(store.readAfter(start, 10))).toMatchObject({ code: 'cursor_expired' });
      // The newest position is still good to resume from.
      const now = await store.position();
      await store.update('m2', {}, event('stored', 'm2'));
      expect(plain(await store.readAfter(now, 10))).toEqual([event('stored', 'm2')]);
    });

    it('refuses a cursor of another store (another deployment, or a restarted one) with cursor_expired', async () => {
      const store = await oneStore();
      await store.update('m1', {}, event('stored', 'm1'));
      const cursor = await store.position();
      const other = await oneStore();
      await other.update('m1', {}, event('stored', 'm1'));

      expect(await rejection(other.readAfter(cursor, 10))).toMatchObject({ code: 'cursor_expired' });
      expect(await rejection(store.readAfter('not a cursor', 10))).toMatchObject({ code: 'invalid_argument' });
    });

    it('tells each listener every event appended after it subscribed, once and in order, whichever node appended it', async () => {
      const deployment = await deploy();
      const a = await node(deployment);
      const b = deployment.nodes ? await node(deployment) : a;
      // Events appended through a store before a listener subscribed there are not told to it.
      // Another node's are, until this node's reader has passed them (nodes share no clock):
      // so the readers are first brought past the events from before.
      const probes = [listen(a), listen(b)];
      await a.update('before-a', {}, event('stored', 'before-a'));
      await b.update('before-b', {}, event('stored', 'before-b'));
      await waitFor('the readers to pass the events from before', () => probes.every((p) => p.events.length === 2));
      for (const probe of probes) probe.stop();
      const onA = listen(a);
      const onB = listen(b);
      const appended: NewReceiptEvent[] = [];
      for (let i = 0; i < 20; i++) {
        const e = event(i % 2 === 0 ? 'acked' : 'stored', `m${i}`, `s${i}`);
        appended.push(e);
        await (i % 2 === 0 ? a : b).update(e.messageId, {}, e);
      }

      await waitFor('both listeners to hear every event', () => onA.events.length >= 20 && onB.events.length >= 20).catch((err) => {
        throw new Error(`${err}: heard ${onA.events.map((e) => e.messageId)} and ${onB.events.map((e) => e.messageId)}`);
      });
      // A last event heard by both: anything told twice would have arrived before it.
      await b.update('last', {}, event('deleted', 'last'));
      await waitFor('the last event', () => onA.events.length > 20 && onB.events.length > 20);
      for (const heard of [onA.events, onB.events]) {
        expect(plain(heard)).toEqual([...appended, event('deleted', 'last')]);
      }
      const history = await a.readAfter(onA.events[0]!.cursor, 100);
      expect(history).toEqual(onA.events.slice(1));
      expect(onB.events.map((e) => e.cursor)).toEqual(onA.events.map((e) => e.cursor));
    });

    it('stops telling a listener once it unsubscribes; a listener that throws does not stop the others', async () => {
      const deployment = await deploy();
      const store = await node(deployment);
      const gone = listen(store);
      store.subscribe(() => {
        throw new Error('listener fault');
      });
      const stays = listen(store);
      await store.update('m1', {}, event('stored', 'm1'));
      await waitFor('both listeners', () => gone.events.length === 1 && stays.events.length === 1);

      gone.stop();
      await store.update('m2', {}, event('stored', 'm2'));
      await store.update('m3', {}, event('stored', 'm3'));
      await waitFor('the remaining listener', () => stays.events.length === 3);
      expect(plain(gone.events)).toEqual([event('stored', 'm1')]);
      expect(plain(stays.events).map((e) => e.messageId)).toEqual(['m1', 'm2', 'm3']);
    });

    it('leaves no timer, connection or listener behind after close', async () => {
      const timersBefore = timers();
      const deployment = await deploy();
      const store = await node(deployment);
      const heard = listen(store);
      await store.update('m1', {}, event('stored', 'm1'));
      await waitFor('the event', () => heard.events.length === 1);
      await store.close();
      opened.delete(store);

      await waitFor('connections to end', () => deployment.leftovers().length === 0).catch(() => undefined);
      expect(deployment.leftovers()).toEqual([]);
      await deployment.close();
      deployments.splice(deployments.indexOf(deployment), 1);
      expect(timers()).toBeLessThanOrEqual(timersBefore);
    });
  });
}

const SENT_AT = 1_800_000_000_000;

export function session(sessionId: string, overrides: Partial<SessionReceipt> = {}): SessionReceipt {
  return {
    sessionId,
    clientType: 'web',
    nodeId: 'node-1',
    status: 'sent',
    atMs: SENT_AT + 5,
    latencyUs: 0,
    ackData: undefined,
    error: '',
    replay: false,
    attempt: 1,
    ...overrides,
  };
}

export function receiptOf(messageId: string, overrides: Partial<MessageReceipt> = {}): MessageReceipt {
  return {
    messageId,
    userId: 'u1',
    event: 'notice',
    sentAtMs: SENT_AT,
    mode: 'store_if_unacked',
    stored: false,
    expiresAtMs: 0,
    removed: undefined,
    sessions: [],
    ...overrides,
  };
}

export function event(kind: NewReceiptEvent['kind'], messageId: string, sessionId = '', replay = false): NewReceiptEvent {
  return { kind, messageId, userId: 'u1', sessionId, clientType: sessionId === '' ? '' : 'web', atMs: SENT_AT + 10, replay };
}

/** Events without their cursors, to compare with what was appended. */
export function plain(events: readonly ReceiptEvent[]): NewReceiptEvent[] {
  return events.map(({ cursor: _, ...rest }) => rest);
}

/** Timers pending in this process now. */
function timers(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
}
