import { type ClientReadableStream, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { DeliveryMode, type ReceiptEvent, ReceiptEventKind, WaitFor } from '../../src/gen/pushgate/v1/inbox.js';
import {
  DeliveryStatus,
  GetMessageRequest,
  type GetMessageResponse,
  type PushToUserResponse,
  WatchReceiptsRequest,
  type WatchReceiptsResponse,
} from '../../src/gen/pushgate/v1/push_service.js';
import { clusterTestHooks, FAST_CLUSTER_ENV, startCluster } from '../support/cluster.js';
import { grpcError, type TestPushClient } from '../support/grpc-client.js';
import { type Device, type DeviceOptions, inboxDevices } from '../support/inbox-devices.js';
import type { TestNode } from '../support/node.js';
import { startNodeProcess, stopAllNodes } from '../support/node-process.js';
import { waitFor } from '../support/wait.js';

// Receipts and idempotent pushes (issue 12) across nodes: in-process nodes sharing a private
// redis-server, and a real node process where one must die. What one node pushes, another node's
// session acks (on time or late) and a third call reads back: GetMessage and WatchReceipts answer
// the same on every node, and a message_id is delivered once whichever node a repeat reaches.

const STORE = DeliveryMode.DELIVERY_MODE_STORE;
const { WAIT_FOR_ANY: ANY, WAIT_FOR_NONE: NONE } = WaitFor;
const { DELIVERY_STATUS_ACKED: ACKED, DELIVERY_STATUS_TIMEOUT: TIMEOUT, DELIVERY_STATUS_PENDING: PENDING } = DeliveryStatus;
const K = ReceiptEventKind;
/** Users whose events only prove a stream ready (see watch). */
const PROBE = 'probe-';
/** How long the slow client of a wait_for ANY push takes to ack. */
const SLOW_ACK_MS = 800;

const { cleanups, redis } = clusterTestHooks();
const devices = inboxDevices();

async function cluster(count: number, env: Record<string, string> = {}): Promise<{ nodes: TestNode[]; prefix: string }> {
  const started = await startCluster(redis().url, count, env);
  cleanups.push(() => started.stop());
  // Before the nodes stop: no push is left waiting on a client during shutdown.
  cleanups.push(() => devices.closeAll());
  return started;
}

function device(node: { httpUrl: string }, userId: string, clientType: string, options?: DeviceOptions): Promise<Device> {
  return devices.device(node.httpUrl, userId, clientType, options);
}

/** Acks every notice `afterMs` after it arrives, with `{ by, n }` (n counts the notices so far). */
function ackAfter(phone: Device, afterMs: number): void {
  let n = 0;
  phone.socket.on('notice', (...args: unknown[]) => {
    const ack = args[args.length - 1] as (reply: unknown) => void;
    const reply = { by: phone.clientType, n: ++n };
    setTimeout(() => ack(reply), afterMs);
  });
}

function getMessage(node: { client: TestPushClient }, messageId: string): Promise<GetMessageResponse> {
  return new Promise((resolve, reject) =>
    node.client.raw.getMessage(GetMessageRequest.fromPartial({ messageId }), new Metadata(), { deadline: Date.now() + 5000 }, (err, res) =>
      err ? reject(err) : resolve(res),
    ),
  );
}

/** A WatchReceipts stream: what it received so far, how it ended, and cancel (also run by the test's cleanups). */
interface ReceiptStream {
  readonly events: ReceiptEvent[];
  readonly error: ServiceError | undefined;
  readonly ended: boolean;
  cancel(): void;
}

/**
 * Opens WatchReceipts on `node`. A stream has no first message to say the node follows the events,
 * so a live stream (no resume_after) is proved ready by probes: STORE pushes for a user of its own
 * (added to a user_ids filter), repeated until the stream shows one. Probe events are left out of
 * `events`. A resumed stream is ready once its catch-up shows: the node subscribes before reading
 * the history.
 */
async function watch(node: TestNode, request: Partial<WatchReceiptsRequest>): Promise<ReceiptStream> {
  const probeUser = `${PROBE}${Math.random().toString(36).slice(2, 10)}`;
  const live = (request.resumeAfter ?? '') === '';
  const userIds = live && request.userIds !== undefined && request.userIds.length > 0 ? [...request.userIds, probeUser] : request.userIds;
  const call: ClientReadableStream<WatchReceiptsResponse> = node.client.raw.watchReceipts(
    WatchReceiptsRequest.fromPartial({ ...request, userIds }),
  );
  const events: ReceiptEvent[] = [];
  let probed = false;
  let error: ServiceError | undefined;
  let ended = false;
  let cancelled = false;
  call.on('data', (res: WatchReceiptsResponse) => {
    const event = res.event!;
    if (event.userId === probeUser) probed = true;
    else if (!event.userId.startsWith(PROBE)) events.push(event);
  });
  call.on('error', (err: ServiceError) => {
    if (!cancelled) error = err;
    ended = true;
  });
  call.on('end', () => (ended = true));
  const cancel = (): void => {
    cancelled = true;
    call.cancel();
  };
  cleanups.push(cancel);
  if (live) {
    let n = 0;
    await waitFor(
      `the receipt stream on ${node.app.config.server.nodeId} to show a probe`,
      async () => {
        if (probed || ended) return true;
        await store(node, probeUser, `${probeUser}-${++n}`);
        return waitFor('the probe', () => probed || ended, { timeoutMs: 300 }).catch(() => false);
      },
      { timeoutMs: 5000, intervalMs: 0 },
    );
  }
  return {
    events,
    get error() {
      return error;
    },
    get ended() {
      return ended;
    },
    cancel,
  };
}

/** The stream's error, once it failed (bounded). */
async function streamError(stream: ReceiptStream): Promise<ServiceError> {
  await waitFor('the receipt stream to fail', () => stream.ended);
  if (stream.error === undefined) throw new Error(`the stream ended without an error after ${stream.events.length} events`);
  return stream.error;
}

/** What a test compares of an event: its kind, message and session. */
function brief(event: ReceiptEvent): string {
  const session = event.sessionId === '' ? '' : ` ${event.clientType}@${event.sessionId}`;
  return `${K[event.kind]} ${event.messageId}${session}`;
}

/** A Redis receipt cursor's event number (`<epoch>-<ms>-<seq>-<n>`), to check cursor order. */
function cursorNumber(cursor: string): number {
  return Number(cursor.split('-').pop());
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Pushes through `node` for a user with no session, kept in the inbox: a STORED receipt event. */
function store(node: TestNode, userId: string, messageId: string, extra: { ttlSeconds?: number } = {}): Promise<PushToUserResponse> {
  return node.client.pushToUser({ userId, event: 'notice', data: { userId, messageId }, messageId, deliveryMode: STORE, ...extra });
}

describe('idempotent PushToUser across nodes', () => {
  it('delivers a message_id sent to A and B at once exactly once; repeats on either node are duplicates; another user is refused', async () => {
    const [a, b] = (await cluster(2)).nodes as [TestNode, TestNode];
    const phone = await device(b, 'idem-u', 'app');
    ackAfter(phone, 300);
    const request = { userId: 'idem-u', event: 'notice', data: { n: 1 }, messageId: 'idem-1', ackTimeoutMs: 3000 };

    const [viaA, viaB] = await Promise.all([a.client.pushToUser(request), b.client.pushToUser(request)]);
    expect(phone.seen).toHaveLength(1);
    expect(phone.seen[0]!.meta).toMatchObject({ messageId: 'idem-1', replay: false, attempt: 1 });
    expect([viaA.duplicate, viaB.duplicate].sort()).toEqual([false, true]);
    expect(viaA.acked).toBe(1);
    expect(viaA.deliveries).toEqual(viaB.deliveries);
    expect(viaA.deliveries[0]).toMatchObject({ status: ACKED, ackData: { by: 'app', n: 1 } });
    expect(viaA.deliveries[0]!.session!.nodeId).toBe('node-b');

    const again = await Promise.all([a.client.pushToUser(request), b.client.pushToUser(request)]);
    for (const repeat of again) {
      expect(repeat.duplicate).toBe(true);
      expect(repeat.deliveries).toEqual(viaA.deliveries);
    }
    // A marker pushed after the repeats arrives after anything they might have sent.
    let marked = false;
    phone.socket.once('marker', () => (marked = true));
    const marker = await a.client.pushToUser({ userId: 'idem-u', event: 'marker', noAck: true });
    expect(marker.deliveries).toHaveLength(1);
    await waitFor('the marker at the client', () => marked);
    expect(phone.seen).toHaveLength(1);

    for (const [node, other] of [
      [a, { userId: 'idem-other' }],
      [b, { userId: 'idem-other' }],
      [a, { event: 'other-event' }],
    ] as const) {
      const err = await grpcError(node.client.pushToUser({ ...request, ...other }));
      expect(err.code, err.details).toBe(status.ALREADY_EXISTS);
      expect(err.details).toContain('idem-1');
    }
    expect(phone.seen).toHaveLength(1);
  });
});

describe('late acks and completion policies across nodes', () => {
  it('records on the node holding the session an ack that came after TIMEOUT; A reads it and streams it', async () => {
    const [a, b] = (await cluster(2)).nodes as [TestNode, TestNode];
    const phone = await device(b, 'late-u', 'app');
    ackAfter(phone, 500);
    const stream = await watch(a, { userIds: ['late-u'] });

    const pushed = await a.client.pushToUser({ userId: 'late-u', event: 'notice', data: { n: 1 }, messageId: 'late-1', ackTimeoutMs: 150 });
    expect(pushed.timedOut).toBe(1);
    expect(pushed.deliveries[0]!.status).toBe(TIMEOUT);
    const sessionId = pushed.deliveries[0]!.session!.sessionId;
    const receipt = await waitFor('A to read the late ack', async () => {
      const got = await getMessage(a, 'late-1');
      return got.deliveries[0]?.status === ACKED && got;
    });
    expect(receipt.deliveries).toHaveLength(1);
    expect(receipt.deliveries[0]).toMatchObject({ status: ACKED, ackData: { by: 'app', n: 1 } });
    expect(receipt.deliveries[0]!.session).toMatchObject({ sessionId, userId: 'late-u', clientType: 'app', nodeId: 'node-b' });
    expect(receipt.deliveries[0]!.latencyUs).toBeGreaterThanOrEqual(400_000);
    expect(receipt.attempts).toMatchObject([{ attempt: 1, replay: false }]);
    expect(await getMessage(b, 'late-1')).toEqual(receipt);

    await waitFor('the ACKED event on A', () => stream.events.length >= 1);
    expect(stream.events.map(brief)).toEqual([`RECEIPT_EVENT_KIND_ACKED late-1 app@${sessionId}`]);
    expect(stream.events[0]).toMatchObject({ userId: 'late-u', replay: false });
    // One ack, one event: nothing more comes.
    await sleep(300);
    expect(stream.events).toHaveLength(1);
  });

  // Sessions on another node report with that node's reply: whichever comes first ends the wait.
  it.each([
    ['on the pushing node A', 'node-a', 'node-b'],
    ['on the other node B', 'node-b', 'node-a'],
  ])(
    'wait_for ANY returns at the first ack (the fast session %s), the other PENDING; the receipt gets its ack',
    async (_where, fastNode, slowNode) => {
      const nodes = (await cluster(2)).nodes as [TestNode, TestNode];
      const [a, b] = nodes;
      const nodeOf = (id: string): TestNode => (id === 'node-a' ? a : b);
      await device(nodeOf(fastNode), 'any-u', 'web', { autoAck: true });
      const slow = await device(nodeOf(slowNode), 'any-u', 'app');
      ackAfter(slow, SLOW_ACK_MS);
      const stream = await watch(b, { userIds: ['any-u'] });

      const started = Date.now();
      const pushed = await a.client.pushToUser({
        userId: 'any-u',
        event: 'notice',
        data: { n: 1 },
        messageId: 'any-1',
        ackTimeoutMs: 3000,
        waitFor: ANY,
      });
      const tookMs = Date.now() - started;
      const byNode = Object.fromEntries(pushed.deliveries.map((d) => [d.session!.nodeId, d]));
      expect.soft(tookMs, 'ms until wait_for ANY returned').toBeLessThan(SLOW_ACK_MS - 300);
      expect(byNode[fastNode]).toMatchObject({ status: ACKED, ackData: { by: 'web' } });
      expect.soft(byNode[slowNode]!.status, 'the slow session in the reply').toBe(PENDING);
      expect(pushed.acked).toBe(pushed.deliveries.filter((d) => d.status === ACKED).length);

      const receipt = await waitFor('both sessions ACKED in the receipt (read through B)', async () => {
        const got = await getMessage(b, 'any-1');
        return got.deliveries.length === 2 && got.deliveries.every((d) => d.status === ACKED) && got;
      });
      const appSession = byNode[slowNode]!.session!.sessionId;
      expect(receipt.deliveries.find((d) => d.session!.sessionId === appSession)!.ackData).toEqual({ by: 'app', n: 1 });
      // Only the ack the caller did not see is an event.
      await waitFor('the ACKED event of the slow session', () => stream.events.length >= 1, { timeoutMs: 2000 });
      await sleep(200);
      expect(stream.events.map(brief)).toEqual([`RECEIPT_EVENT_KIND_ACKED any-1 app@${appSession}`]);
    },
  );

  it('wait_for NONE returns before any ack; both sessions, on A and B, are ACKED in the receipt later', async () => {
    const [a, b] = (await cluster(2)).nodes as [TestNode, TestNode];
    const web = await device(a, 'none-u', 'web');
    const app = await device(b, 'none-u', 'app');
    ackAfter(web, 300);
    ackAfter(app, 300);
    const stream = await watch(a, { userIds: ['none-u'] });

    const pushed = await b.client.pushToUser({
      userId: 'none-u',
      event: 'notice',
      data: { n: 1 },
      messageId: 'none-1',
      ackTimeoutMs: 3000,
      waitFor: NONE,
    });
    expect(pushed.deliveries.map((d) => d.status)).toEqual([PENDING, PENDING]);
    expect(pushed.acked).toBe(0);
    expect((await getMessage(a, 'none-1')).deliveries.map((d) => d.status)).toEqual([PENDING, PENDING]);

    const receipt = await waitFor('both ACKED in the receipt', async () => {
      const got = await getMessage(a, 'none-1');
      return got.deliveries.every((d) => d.status === ACKED) && got;
    });
    expect(receipt.deliveries.map((d) => d.ackData).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)))).toEqual([
      { by: 'app', n: 1 },
      { by: 'web', n: 1 },
    ]);
    await waitFor('two ACKED events', () => stream.events.length >= 2);
    await sleep(200);
    expect(stream.events.map((e) => [K[e.kind], e.clientType]).sort()).toEqual([
      ['RECEIPT_EVENT_KIND_ACKED', 'app'],
      ['RECEIPT_EVENT_KIND_ACKED', 'web'],
    ]);
  });
});

describe('WatchReceipts across nodes', () => {
  it('resumes on B, after a stream on A was cancelled, with exactly the missed events in order, then live ones', async () => {
    const [a, b] = (await cluster(2)).nodes as [TestNode, TestNode];
    const first = await watch(a, {});
    await store(a, 'res-u', 'r1');
    await waitFor('the STORED event on A', () => first.events.length === 1);
    expect(first.events.map(brief)).toEqual(['RECEIPT_EVENT_KIND_STORED r1']);
    const cursor = first.events[0]!.cursor;
    first.cancel();

    await store(b, 'res-u', 'r2');
    expect((await b.client.deleteInbox({ userId: 'res-u', messageIds: ['r2'] })).deleted).toBe(1);
    await store(b, 'res-other', 'o1');
    await store(b, 'res-u', 'r3', { ttlSeconds: 1 });
    await waitFor('r3 to expire', async () => (await getMessage(b, 'r3')).removed === K.RECEIPT_EVENT_KIND_EXPIRED, { timeoutMs: 5000 });

    const missed = ['STORED r2', 'DELETED r2', 'STORED r3', 'EXPIRED r3'].map((e) => `RECEIPT_EVENT_KIND_${e}`);
    const mine = await watch(b, { userIds: ['res-u'], resumeAfter: cursor });
    const all = await watch(b, { resumeAfter: cursor });
    await waitFor('the filtered resume to catch up', () => mine.events.length >= 4);
    await waitFor('the unfiltered resume to catch up', () => all.events.length >= 5);
    await store(a, 'res-u', 'r4');
    await waitFor('the live event after the catch-up', () => mine.events.length >= 5 && all.events.length >= 6);
    await sleep(200);
    expect(mine.events.map(brief)).toEqual([...missed, 'RECEIPT_EVENT_KIND_STORED r4']);
    // Across users only each message's own events are ordered (appends race): the same events, in cursor order.
    expect(all.events.map(brief).sort()).toEqual([...mine.events.map(brief), 'RECEIPT_EVENT_KIND_STORED o1'].sort());
    expect(all.events.map((e) => cursorNumber(e.cursor))).toEqual(all.events.map((e) => cursorNumber(e.cursor)).sort((x, y) => x - y));
    expect(new Set(all.events.map((e) => e.cursor)).size).toBe(6);
    expect(mine.events.map((e) => e.cursor)).toEqual(all.events.filter((e) => e.userId === 'res-u').map((e) => e.cursor));
  });

  it('refuses a trimmed or foreign cursor with FAILED_PRECONDITION on every node, and a non-cursor with INVALID_ARGUMENT', async () => {
    // Three events retained: the fifth event trims the first two.
    const [a, b] = (await cluster(2, { PUSHGATE_PRESENCE_RETENTION: '3' })).nodes as [TestNode, TestNode];
    const stream = await watch(a, {});
    for (let i = 1; i <= 5; i++) await store(i % 2 === 0 ? a : b, 'trim-u', `t${i}`);
    await waitFor('five STORED events', () => stream.events.length === 5);
    const [c1, c2] = stream.events.map((e) => e.cursor) as [string, string];

    for (const node of [a, b]) {
      const expired = await streamError(await watch(node, { resumeAfter: c1 }));
      expect(expired.code, expired.details).toBe(status.FAILED_PRECONDITION);
    }
    // The oldest cursor still held resumes with every event retained.
    const held = await watch(b, { resumeAfter: c2 });
    await waitFor('the three retained events', () => held.events.length === 3);
    expect(held.events.map((e) => e.cursor)).toEqual(stream.events.slice(2).map((e) => e.cursor));

    // Well formed, but of another store's epoch (as after Redis lost its data).
    const foreign = c2.replace(/^\d+/, '1');
    const err = await streamError(await watch(b, { resumeAfter: foreign }));
    expect(err.code, err.details).toBe(status.FAILED_PRECONDITION);
    // Not a cursor at all: a caller's mistake, as WatchPresence says of its cursors.
    const garbage = await streamError(await watch(a, { resumeAfter: 'garbage' }));
    expect(garbage.code, garbage.details).toBe(status.INVALID_ARGUMENT);
  });
});

describe('inbox receipt events across nodes', () => {
  it('STORED through A, DELETED through B, one EXPIRED with two nodes sweeping, DROPPED from a full inbox', async () => {
    const [a, b] = (await cluster(2, { PUSHGATE_INBOX_MAX_MESSAGES: '2', PUSHGATE_INBOX_FULL_POLICY: 'drop_oldest' })).nodes as [
      TestNode,
      TestNode,
    ];
    const stream = await watch(b, {});

    const kept = await store(a, 'box-u', 'd1');
    expect(kept.stored).toBe(true);
    const stored = await getMessage(b, 'd1');
    expect(stored).toMatchObject({ stored: true, removed: K.RECEIPT_EVENT_KIND_UNSPECIFIED, deliveryMode: STORE });
    expect(stored.expiresAt).toBeInstanceOf(Date);
    expect((await b.client.deleteInbox({ userId: 'box-u', messageIds: ['d1'] })).deleted).toBe(1);
    const deleted = await getMessage(a, 'd1');
    expect(deleted).toMatchObject({ stored: false, removed: K.RECEIPT_EVENT_KIND_DELETED });
    expect(deleted.removedAt).toBeInstanceOf(Date);

    await store(b, 'ttl-u', 'e1', { ttlSeconds: 1 });
    await waitFor('e1 to expire', async () => (await getMessage(a, 'e1')).removed === K.RECEIPT_EVENT_KIND_EXPIRED, { timeoutMs: 5000 });
    expect((await a.client.listInbox({ userId: 'ttl-u' })).messages).toEqual([]);

    for (const [i, node] of [a, b, a].entries()) await store(node, 'full-u', `f${i + 1}`);
    expect((await b.client.listInbox({ userId: 'full-u' })).messages.map((m) => m.messageId)).toEqual(['f2', 'f3']);
    expect(await getMessage(b, 'f1')).toMatchObject({ stored: false, removed: K.RECEIPT_EVENT_KIND_DROPPED });

    // Both nodes sweep every second: a second sweep must not report e1 again.
    await sleep(2200);
    // Each message's events in order; events of different messages may be appended in either order.
    const byMessage: Record<string, string[]> = {};
    for (const event of stream.events) {
      byMessage[event.messageId] = [...(byMessage[event.messageId] ?? []), K[event.kind].replace('RECEIPT_EVENT_KIND_', '')];
    }
    expect(byMessage).toEqual({
      d1: ['STORED', 'DELETED'],
      e1: ['STORED', 'EXPIRED'],
      f1: ['STORED', 'DROPPED'],
      f2: ['STORED'],
      f3: ['STORED'],
    });
  });
});

describe('a node killed (SIGKILL) after a wait_for NONE push, before the acks', () => {
  it('leaves the sessions PENDING (the known limit), and the other node keeps answering', async () => {
    cleanups.push(() => stopAllNodes());
    const { nodes, prefix } = await cluster(1);
    const survivor = nodes[0]!;
    const doomed = await startNodeProcess({
      ...FAST_CLUSTER_ENV,
      REDIS_URL: redis().url,
      PUSHGATE_REDIS_PREFIX: prefix,
      PUSHGATE_NODE_ID: 'doomed',
    });
    const phone = await device(survivor, 'kill-u', 'app');
    ackAfter(phone, 500);
    await waitFor('the doomed node to see the session', async () => {
      const { sessions } = await doomed.client.listSessions({ userId: 'kill-u' });
      return sessions.length === 1;
    });
    const stream = await watch(survivor, { userIds: ['kill-u'] });

    const pushed = await doomed.client.pushToUser({
      userId: 'kill-u',
      event: 'notice',
      data: { n: 1 },
      messageId: 'kill-1',
      ackTimeoutMs: 3000,
      waitFor: NONE,
    });
    expect(pushed.deliveries.map((d) => d.status)).toEqual([PENDING]);
    expect(doomed.signal('SIGKILL')).toBe(true);
    expect(await doomed.waitForExit(5000)).toEqual({ code: null, signal: 'SIGKILL' });

    await waitFor('the client to receive it', () => phone.seen.length === 1);
    // The client acked within the ack timeout: the ack went into the reply to the dead node, so no
    // node records it. The receipt keeps PENDING until its retention (PUSHGATE_RECEIPT_RETENTION_S).
    await sleep(1000);
    const receipt = await getMessage(survivor, 'kill-1');
    expect(receipt.deliveries.map((d) => [d.status, d.session!.nodeId])).toEqual([[PENDING, 'node-a']]);
    expect(stream.events).toEqual([]);
    expect(stream.ended).toBe(false);

    const after = await survivor.client.pushToUser({
      userId: 'kill-u',
      event: 'notice',
      data: { n: 2 },
      messageId: 'kill-2',
      ackTimeoutMs: 3000,
    });
    expect(after.acked).toBe(1);
    expect(after.deliveries[0]!.ackData).toEqual({ by: 'app', n: 2 });
  });
});
