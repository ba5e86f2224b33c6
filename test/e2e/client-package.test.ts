import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CursorExpiredError,
  DeliveryMode,
  DeliveryStatus,
  GrpcStatus,
  type PresenceEvent,
  PresenceEventKind,
  type PresenceStream,
  PushgateClient,
  PushgateClientError,
  type PushgateClientOptions,
  type ReceiptEvent,
  ReceiptEventKind,
  type ReceiptStream,
  RemovalPolicy,
  type RetryEvent,
} from '../../packages/client/src/index.js';
import { pem, TestPki } from '../support/certificates.js';
import { startNode, type TestNode } from '../support/node.js';
import { startNodeProcess, stopAllNodes } from '../support/node-process.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { waitFor } from '../support/wait.js';

/**
 * The backend client package (packages/client) against real nodes: pushes, paged listings,
 * presence streams that resume across a node process restart in cluster mode, disconnects, API
 * keys, mutual TLS, retries on UNAVAILABLE, cancellation, and the built package in plain Node.
 */

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const KEY = randomBytes(24).toString('base64url');
const READ_ONLY_KEY = randomBytes(24).toString('base64url');
const API_KEYS = { PUSHGATE_API_KEYS: `backend:push,read,admin:${KEY};dashboard:read:${READ_ONLY_KEY}` };
/** Short backoffs everywhere, so a test waits for the node rather than for a timer. */
const QUICK: Partial<PushgateClientOptions> = {
  retry: { initialBackoffMs: 50, maxBackoffMs: 300, maxAttempts: 100 },
  channelOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 300 },
};

const { PRESENCE_EVENT_KIND_SESSION_CONNECTED: CONNECTED, PRESENCE_EVENT_KIND_SESSION_DISCONNECTED: DISCONNECTED } = PresenceEventKind;
const { PRESENCE_EVENT_KIND_USER_ONLINE: ONLINE, PRESENCE_EVENT_KIND_SNAPSHOT_COMPLETE: SNAPSHOT_COMPLETE } = PresenceEventKind;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await stopAllNodes();
});

async function node(env: Record<string, string> = {}): Promise<TestNode> {
  const started = await startNode({ ...API_KEYS, ...env });
  cleanups.push(() => started.stop());
  return started;
}

function client(options: PushgateClientOptions): PushgateClient {
  const created = new PushgateClient(options);
  cleanups.push(() => created.close());
  return created;
}

/** Reads a stream in the background, as an application loop would. */
function consume<E extends PresenceEvent | ReceiptEvent = PresenceEvent>(
  stream: PresenceStream | ReceiptStream,
): { events: E[]; result: Promise<unknown>; count(n: number): () => boolean } {
  const events: E[] = [];
  let failure: unknown;
  const result = (async () => {
    for await (const event of stream) events.push(event as E);
  })().then(
    () => undefined,
    (err: unknown) => (failure = err),
  );
  cleanups.push(() => stream.close());
  /** A waitFor check for `n` events that fails at once, with the reason, if the stream ended. */
  const count = (n: number) => (): boolean => {
    if (failure !== undefined) throw new Error(`the stream ended with ${events.length} events: ${String(failure)}`);
    return events.length >= n;
  };
  return { events, result, count };
}

type Row = [kind: PresenceEventKind, sessionId: string | undefined, reason: string];
const rows = (events: readonly PresenceEvent[]): Row[] => events.map((e) => [e.kind, e.session?.sessionId, e.reason]);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('the backend client package', () => {
  it('pushes to three acking sessions and reports each ack', async () => {
    const n = await node();
    const sockets = await Promise.all(['app', 'pc', 'web'].map((type) => n.connect('61', type)));
    for (const socket of sockets) socket.on('notice', (data: { n: number }, ack: (reply: unknown) => void) => ack({ got: data.n }));
    const pushgate = client({ address: n.grpcAddress, apiKey: KEY });

    const response = await pushgate.pushToUser({ userId: '61', event: 'notice', data: { n: 7 }, messageId: 'm-1' });

    expect(response.messageId).toBe('m-1');
    expect(response.acked).toBe(3);
    expect(response.deliveries.map((d) => [d.session?.clientType, d.status, d.ackData]).sort()).toEqual([
      ['app', DeliveryStatus.DELIVERY_STATUS_ACKED, { got: 7 }],
      ['pc', DeliveryStatus.DELIVERY_STATUS_ACKED, { got: 7 }],
      ['web', DeliveryStatus.DELIVERY_STATUS_ACKED, { got: 7 }],
    ]);
  });

  it('pushes to many users as a stream of user results and a summary, and cancels the call on break', async () => {
    const n = await node();
    const sockets = [await n.connect('81', 'app'), await n.connect('81', 'web'), await n.connect('82', 'pc')];
    for (const socket of sockets) socket.on('notice', (data: { n: number }, ack: (reply: unknown) => void) => ack({ got: data.n }));
    const silent = await n.connect('83', 'web');
    silent.on('notice', () => undefined);
    const pushgate = client({ address: n.grpcAddress, apiKey: KEY });

    const messages = [];
    for await (const message of pushgate.pushToUsers({ userIds: ['81', '82', '84'], event: 'notice', data: { n: 9 }, messageId: 'b-1' })) {
      messages.push(message);
    }
    const results = messages.flatMap((m) => (m.userResult === undefined ? [] : [m.userResult]));
    expect(results.map((r) => [r.userId, r.messageId, r.acked, r.deliveries.map((d) => d.ackData)]).sort()).toEqual([
      ['81', 'b-1:81', 2, [{ got: 9 }, { got: 9 }]],
      ['82', 'b-1:82', 1, [{ got: 9 }]],
      ['84', 'b-1:84', 0, []],
    ]);
    expect(messages.at(-1)!.summary).toEqual({
      messageId: 'b-1',
      users: 3,
      usersWithoutSessions: 1,
      sessions: 3,
      acked: 3,
      timedOut: 0,
      failed: 0,
      sent: 0,
      stored: 0,
    });

    // Leaving the loop after the first result cancels the call: the silent session's wait ends at once.
    for await (const message of pushgate.pushToUsers({ userIds: ['84', '83'], event: 'notice', ackTimeoutMs: 20_000 })) {
      expect(message.userResult?.userId).toBe('84');
      break;
    }
    await waitFor('the silent session’s ack wait to end', () => n.app.local.pendingWaits() === 0 && n.app.callsInFlight === 0);

    const refused = await (async () => {
      try {
        for await (const _ of pushgate.pushToUsers({ userIds: [], event: 'notice' })) return undefined;
      } catch (err) {
        return err;
      }
    })();
    expect(refused).toBeInstanceOf(PushgateClientError);
    expect(refused).toMatchObject({ method: 'PushToUsers', code: GrpcStatus.INVALID_ARGUMENT, pushgateCode: 'invalid_argument' });
  });

  it('lists sessions one page at a time, and all of them through the iterator', async () => {
    const n = await node();
    const sockets: Socket[] = [];
    for (let i = 0; i < 5; i++) sockets.push(await n.connect('62', i % 2 === 0 ? 'app' : 'web'));
    const pushgate = client({ address: n.grpcAddress, apiKey: KEY });

    const first = await pushgate.listSessions({ userId: '62', pageSize: 2 });
    expect(first.sessions.map((s) => s.sessionId)).toEqual(sockets.slice(0, 2).map((s) => s.id));
    expect(first.nextPageToken).not.toBe('');
    const second = await pushgate.listSessions({ userId: '62', pageSize: 2, pageToken: first.nextPageToken });
    expect(second.sessions.map((s) => s.sessionId)).toEqual(sockets.slice(2, 4).map((s) => s.id));

    const all: string[] = [];
    for await (const session of pushgate.allSessions({ userId: '62', pageSize: 2 })) all.push(session.sessionId);
    expect(all).toEqual(sockets.map((s) => s.id));
    const apps: string[] = [];
    for await (const session of pushgate.allSessions({ userId: '62', clientTypes: ['app'], pageSize: 1 })) apps.push(session.sessionId);
    expect(apps).toEqual([sockets[0]!.id, sockets[2]!.id, sockets[4]!.id]);
  });

  it('follows connects on a presence stream and lets go of it on break', async () => {
    const n = await node();
    const pushgate = client({ address: n.grpcAddress, apiKey: KEY });
    const stream = pushgate.watchPresence({ userIds: ['63'], includeSnapshot: true });
    const seen: PresenceEvent[] = [];
    const reading = (async () => {
      for await (const event of stream) {
        seen.push(event);
        if (seen.length === 4) break;
      }
    })();
    await waitFor('SNAPSHOT_COMPLETE', () => seen.length >= 1);
    const a = await n.connect('63', 'app');
    const b = await n.connect('63', 'web');
    await reading;

    expect(rows(seen)).toEqual([
      [SNAPSHOT_COMPLETE, undefined, ''],
      [ONLINE, a.id, ''],
      [CONNECTED, a.id, ''],
      [CONNECTED, b.id, ''],
    ]);
    expect(stream.cursor).toBe(seen[3]!.cursor);
    await waitFor('the node to drop the stream', () => n.app.registry.subscriberCount() === 0);
  });

  it('disconnects one session with a reason the client receives', async () => {
    const n = await node();
    const keep = await n.connect('64', 'app');
    const kick = await n.connect('64', 'web');
    const notices: unknown[] = [];
    kick.on('pushgate:disconnect', (notice: unknown) => notices.push(notice));
    const pushgate = client({ address: n.grpcAddress, apiKey: KEY });

    const kickedId = kick.id!;
    const response = await pushgate.disconnectSessions({ userId: '64', sessionIds: [kickedId], reason: 'signed out' });

    expect(response.disconnected.map((s) => s.sessionId)).toEqual([kickedId]);
    await waitFor('the kicked socket to close', () => !kick.connected);
    expect(notices).toEqual([{ reason: 'signed out' }]);
    expect(keep.connected).toBe(true);
    expect((await pushgate.listSessions({ userId: '64' })).sessions.map((s) => s.sessionId)).toEqual([keep.id]);
  });

  it('sends the API key, and reports refusals as typed errors with pushgate’s code', async () => {
    const n = await node();
    const anonymous = client({ address: n.grpcAddress });
    const wrongKey = client({ address: n.grpcAddress, apiKey: 'not-a-key' });
    const readOnly = client({ address: n.grpcAddress, apiKey: READ_ONLY_KEY });

    for (const [caller, code, pushgateCode] of [
      [anonymous, GrpcStatus.UNAUTHENTICATED, 'unauthenticated'],
      [wrongKey, GrpcStatus.UNAUTHENTICATED, 'unauthenticated'],
      [readOnly, GrpcStatus.PERMISSION_DENIED, 'permission_denied'],
    ] as const) {
      const err = await caller.pushToUser({ userId: '65', event: 'notice' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PushgateClientError);
      expect(err).toMatchObject({ code, pushgateCode, method: 'PushToUser' });
    }
    expect((await readOnly.listSessions({ userId: '65' })).sessions).toEqual([]);
    const bad = await readOnly.listSessions({ userId: '' }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ code: GrpcStatus.INVALID_ARGUMENT, pushgateCode: 'invalid_argument' });
    expect(() => new PushgateClient({ address: n.grpcAddress, apiKey: 'two words' })).toThrow(/apiKey/);
  });

  it('speaks mutual TLS with a client certificate', async () => {
    const pki = new TestPki();
    cleanups.push(() => pki.remove());
    const server = pki.serverCert('server');
    const n = await node({
      PUSHGATE_GRPC_TLS_CERT: server.cert,
      PUSHGATE_GRPC_TLS_KEY: server.key,
      PUSHGATE_GRPC_TLS_CLIENT_CA: pki.ca.cert,
      PUSHGATE_GRPC_CLIENT_CERT_SCOPES: 'billing=read,push',
    });
    await n.connect('66', 'app');
    const billing = pem(pki.clientCert('billing'));
    const pushgate = client({ address: n.grpcAddress, tls: { ca: pki.ca.cert, cert: billing.cert, key: billing.key } });
    expect((await pushgate.listSessions({ userId: '66' })).sessions).toHaveLength(1);

    // Without a certificate the TLS handshake itself fails: the channel reports UNAVAILABLE.
    const serverOnly = client({ address: n.grpcAddress, tls: { ca: pki.ca.cert }, retry: { maxAttempts: 1 } });
    await expect(serverOnly.listSessions({ userId: '66' })).rejects.toMatchObject({ code: GrpcStatus.UNAVAILABLE });
  });

  it('retries ListSessions on UNAVAILABLE until a node listens, and never retries a push', async () => {
    const port = await freePort();
    const retries: RetryEvent[] = [];
    const pushgate = client({ address: `127.0.0.1:${port}`, apiKey: KEY, ...QUICK, onRetry: (e) => retries.push(e) });

    const push = await pushgate.pushToUser({ userId: '67', event: 'notice' }).catch((e: unknown) => e);
    expect(push).toMatchObject({ code: GrpcStatus.UNAVAILABLE, method: 'PushToUser' });
    expect(retries).toEqual([]);

    const listing = pushgate.listSessions({ userId: '67' }, { deadlineMs: 15_000 });
    await waitFor('a retry of ListSessions', () => retries.length >= 1);
    const n = await node({ PUSHGATE_GRPC_PORT: String(port) });
    const socket = await n.connect('67', 'app');

    const page = await listing;
    expect(page.sessions.map((s) => s.sessionId)).toEqual([socket.id]);
    expect(retries.every((r) => r.method === 'ListSessions' && (r.error as PushgateClientError).code === GrpcStatus.UNAVAILABLE)).toBe(
      true,
    );
  });

  it('gives up at the deadline, and cancels a call on abort', async () => {
    const n = await node();
    const socket = await n.connect('68', 'app');
    socket.on('notice', () => {}); // never acks
    const pushgate = client({ address: n.grpcAddress, apiKey: KEY });

    const late = await pushgate
      .pushToUser({ userId: '68', event: 'notice', ackTimeoutMs: 5000 }, { deadlineMs: 200 })
      .catch((e: unknown) => e);
    expect(late).toMatchObject({ code: GrpcStatus.DEADLINE_EXCEEDED });

    const controller = new AbortController();
    const pending = pushgate.pushToUser({ userId: '68', event: 'notice', ackTimeoutMs: 5000 }, { signal: controller.signal });
    const startedAt = Date.now();
    controller.abort(new Error('the user went away'));
    await expect(pending).rejects.toThrow('the user went away');
    expect(Date.now() - startedAt).toBeLessThan(1000);
  });

  it('ends with a CursorExpiredError when the cursor is gone, or starts over from a snapshot if asked', async () => {
    const n = await node({ PUSHGATE_PRESENCE_RETENTION: '2' });
    const pushgate = client({ address: n.grpcAddress, apiKey: KEY });
    const first = consume(pushgate.watchPresence({ userIds: ['69'], includeSnapshot: true }));
    await waitFor('SNAPSHOT_COMPLETE', first.count(1));
    const a = await n.connect('69', 'app');
    await n.connect('69', 'web');
    await waitFor('three events', first.count(4));
    // The snapshot's position: the two events held since (retention 2) no longer reach back to it.
    const old = first.events[0]!.cursor;

    const strict = pushgate.watchPresence({ userIds: ['69'], resumeAfter: old });
    const err = await strict.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CursorExpiredError);
    expect(err).toMatchObject({ code: GrpcStatus.FAILED_PRECONDITION, pushgateCode: 'cursor_expired', cursor: old });
    expect((err as CursorExpiredError).oldestCursor).toBeTruthy();

    const lenient = consume(pushgate.watchPresence({ userIds: ['69'], resumeAfter: old, onCursorExpired: 'snapshot' }));
    await waitFor('a fresh snapshot', lenient.count(3));
    expect(rows(lenient.events).slice(0, 2).sort()).toEqual(
      [
        [CONNECTED, a.id, 'snapshot'],
        [CONNECTED, first.events[3]!.session?.sessionId, 'snapshot'],
      ].sort(),
    );
    expect(rows(lenient.events)[2]).toEqual([SNAPSHOT_COMPLETE, undefined, '']);
  });

  it('stores pushes for an offline user, lists and deletes the inbox, reads receipts, and answers a repeat as a duplicate', async () => {
    const n = await node();
    const pushgate = client({ address: n.grpcAddress, apiKey: KEY });
    const stored = {
      userId: '90',
      event: 'notice',
      data: { n: 1 },
      messageId: 's-1',
      deliveryMode: 'store',
      ttlSeconds: 60,
      removal: 'each_client_type',
    } as const;

    const first = await pushgate.pushToUser(stored);
    expect(first).toMatchObject({ messageId: 's-1', stored: true, duplicate: false, deliveries: [] });
    expect(await pushgate.pushToUser(stored)).toMatchObject({ messageId: 's-1', stored: true, duplicate: true });
    for (const id of ['s-2', 's-3']) {
      expect(await pushgate.pushToUser({ userId: '90', event: 'notice', messageId: id, deliveryMode: 'store_if_unacked' })).toMatchObject({
        stored: true,
      });
    }
    expect(await pushgate.pushToUser({ userId: '90', event: 'notice', messageId: 'l-1', deliveryMode: 'live' })).toMatchObject({
      stored: false,
    });

    const page = await pushgate.listInbox({ userId: '90', pageSize: 2 });
    expect(page.messages.map((m) => m.messageId)).toEqual(['s-1', 's-2']);
    expect(page.nextPageToken).not.toBe('');
    const all = [];
    for await (const message of pushgate.allInbox({ userId: '90', pageSize: 1 })) all.push(message);
    expect(all.map((m) => [m.messageId, m.removal, m.data])).toEqual([
      ['s-1', RemovalPolicy.REMOVAL_POLICY_EACH_CLIENT_TYPE, { n: 1 }],
      ['s-2', RemovalPolicy.REMOVAL_POLICY_ANY_SESSION, null],
      ['s-3', RemovalPolicy.REMOVAL_POLICY_ANY_SESSION, null],
    ]);
    expect(all[0]!.expiresAt!.getTime() - all[0]!.sentAt!.getTime()).toBe(60_000);

    expect(await pushgate.getMessage('s-1')).toMatchObject({
      messageId: 's-1',
      userId: '90',
      event: 'notice',
      deliveryMode: DeliveryMode.DELIVERY_MODE_STORE,
      stored: true,
      removed: ReceiptEventKind.RECEIPT_EVENT_KIND_UNSPECIFIED,
    });
    expect(await pushgate.deleteInbox({ userId: '90', messageIds: ['s-2', 'never-stored'] })).toEqual({ deleted: 1 });
    expect(await pushgate.deleteInbox({ userId: '90', all: true })).toEqual({ deleted: 2 });
    expect((await pushgate.listInbox({ userId: '90' })).messages).toEqual([]);
    expect(await pushgate.getMessage('s-1')).toMatchObject({ stored: false, removed: ReceiptEventKind.RECEIPT_EVENT_KIND_DELETED });

    const missing = await pushgate.getMessage('never-sent').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(PushgateClientError);
    expect(missing).toMatchObject({ method: 'GetMessage', code: GrpcStatus.NOT_FOUND, pushgateCode: 'message_not_found' });
    // Inputs the server would refuse, or could not express, are refused before any call.
    expect(() => pushgate.pushToUser({ userId: '90', event: 'notice', deliveryMode: 'later' as never })).toThrow(
      /deliveryMode must be one of live, store_if_unacked, store/,
    );
    expect(() => pushgate.pushToUser({ userId: '90', event: 'notice', ttlSeconds: 1.5 })).toThrow(/ttlSeconds/);
    expect(() => pushgate.deleteInbox({ userId: '90', messageIds: [] })).toThrow(/messageIds \(at least one\) or all: true/);
    const refused = await pushgate
      .pushToUser({ userId: '90', event: 'notice', noAck: true, deliveryMode: 'store' })
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: GrpcStatus.INVALID_ARGUMENT });
  });

  it('returns early with waitFor any/none, and streams the later acks as receipt events', async () => {
    const n = await node();
    const pushgate = client({ address: n.grpcAddress, apiKey: KEY });
    const quick = await n.connect('91', 'app');
    quick.on('notice', (_data: unknown, ack: (reply: unknown) => void) => ack('quick'));
    const slow = await n.connect('91', 'web');
    const held: (() => void)[] = [];
    slow.on('notice', (_data: unknown, ack: (reply: unknown) => void) => held.push(() => ack('slow')));

    const stream = pushgate.watchReceipts({ userIds: ['91', '91-warm'] });
    const { events } = consume<ReceiptEvent>(stream);
    // A live stream sees what happens after the server subscribed it: push until its first event arrives.
    for (let i = 0; events.length === 0; i++) {
      await pushgate.pushToUser({ userId: '91-warm', event: 'notice', messageId: `w-${i}`, deliveryMode: 'store' });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    const any = await pushgate.pushToUser({ userId: '91', event: 'notice', messageId: 'p-any', ackTimeoutMs: 20_000, waitFor: 'any' });
    expect(any.deliveries.map((d) => [d.session?.sessionId, d.status]).sort()).toEqual(
      [
        [quick.id, DeliveryStatus.DELIVERY_STATUS_ACKED],
        [slow.id, DeliveryStatus.DELIVERY_STATUS_PENDING],
      ].sort(),
    );
    const none = await pushgate.pushToUser({ userId: '91', event: 'notice', messageId: 'p-none', ackTimeoutMs: 20_000, waitFor: 'none' });
    expect(none.deliveries.map((d) => d.status)).toEqual([DeliveryStatus.DELIVERY_STATUS_PENDING, DeliveryStatus.DELIVERY_STATUS_PENDING]);

    await waitFor('the slow session to hold both acks', () => held.length === 2);
    for (const ack of held) ack();
    const acked = (id: string) => events.filter((e) => e.messageId === id && e.kind === ReceiptEventKind.RECEIPT_EVENT_KIND_ACKED);
    await waitFor('the late acks', () => acked('p-any').length === 1 && acked('p-none').length === 2);
    expect(acked('p-any').map((e) => [e.userId, e.sessionId, e.clientType, e.replay])).toEqual([['91', slow.id, 'web', false]]);
    expect(stream.cursor).toBe(events.at(-1)!.cursor);

    const receipt = await pushgate.getMessage('p-any');
    expect(receipt.deliveries.map((d) => [d.session?.sessionId, d.status, d.ackData]).sort()).toEqual(
      [
        [quick.id, DeliveryStatus.DELIVERY_STATUS_ACKED, 'quick'],
        [slow.id, DeliveryStatus.DELIVERY_STATUS_ACKED, 'slow'],
      ].sort(),
    );
    expect(receipt.attempts.map((a) => [a.attempt, a.replay])).toEqual([
      [1, false],
      [1, false],
    ]);

    // A cursor the server never handed out ends the iteration with the server's refusal, not retries.
    const bad = await pushgate
      .watchReceipts({ resumeAfter: 'not-a-cursor' })
      .next()
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(PushgateClientError);
    expect(bad).toMatchObject({ method: 'WatchReceipts', code: GrpcStatus.INVALID_ARGUMENT });
    // Another node without Redis holds other events: the cursor is expired there, and the stream says so.
    const other = client({ address: (await node()).grpcAddress, apiKey: KEY });
    const expired = await other
      .watchReceipts({ resumeAfter: stream.cursor })
      .next()
      .catch((e: unknown) => e);
    expect(expired).toBeInstanceOf(CursorExpiredError);
    expect(expired).toMatchObject({ code: GrpcStatus.FAILED_PRECONDITION, pushgateCode: 'cursor_expired', cursor: stream.cursor });
  });

  it('retries a push with a messageId on UNAVAILABLE (the server deduplicates it), and not one without', async () => {
    const port = await freePort();
    const retries: RetryEvent[] = [];
    const pushgate = client({ address: `127.0.0.1:${port}`, apiKey: KEY, ...QUICK, onRetry: (e) => retries.push(e) });

    const anonymous = await pushgate.pushToUser({ userId: '93', event: 'notice' }).catch((e: unknown) => e);
    expect(anonymous).toMatchObject({ code: GrpcStatus.UNAVAILABLE, method: 'PushToUser' });
    expect(retries).toEqual([]);

    const push = { userId: '93', event: 'notice', messageId: 'r-1', deliveryMode: 'store_if_unacked' } as const;
    const pending = pushgate.pushToUser(push, { deadlineMs: 15_000 });
    await waitFor('a retry of PushToUser', () => retries.length >= 1);
    await node({ PUSHGATE_GRPC_PORT: String(port) });

    expect(await pending).toMatchObject({ messageId: 'r-1', stored: true, duplicate: false });
    expect(retries.every((r) => r.method === 'PushToUser' && (r.error as PushgateClientError).code === GrpcStatus.UNAVAILABLE)).toBe(true);
    // What a retry after a lost answer gets: the first call's result, delivered once.
    expect(await pushgate.pushToUser(push)).toMatchObject({ messageId: 'r-1', stored: true, duplicate: true });
    expect((await pushgate.listInbox({ userId: '93' })).messages.map((m) => m.messageId)).toEqual(['r-1']);
  });

  it('works built, from plain Node, as a dependency would use it', async () => {
    const n = await node();
    const socket = await n.connect('70', 'app');
    socket.on('notice', (_data: unknown, ack: (reply: unknown) => void) => ack('built'));
    await run('npm', ['run', 'build', '--workspace', '@pushgate/client'], { cwd: ROOT, timeout: 60_000 });
    const script = `
      import { PushgateClient } from '@pushgate/client';
      import { PushToUserRequest } from '@pushgate/client/gen/pushgate/v1/push_service';
      const client = new PushgateClient({ address: process.argv[1], apiKey: process.argv[2] });
      const response = await client.pushToUser({ userId: '70', event: 'notice' });
      console.log(JSON.stringify({ acked: response.acked, ack: response.deliveries[0].ackData, gen: typeof PushToUserRequest.encode }));
      client.close();`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, n.grpcAddress, KEY], {
      cwd: ROOT,
      timeout: 20_000,
    });
    expect(JSON.parse(stdout)).toEqual({ acked: 1, ack: 'built', gen: 'function' });
  });
});

describe('the backend client package in cluster mode', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('resumes a presence stream after the node it watches restarts, without losing or repeating events', async () => {
    const env = { ...API_KEYS, REDIS_URL: redis.url, PUSHGATE_REDIS_PREFIX: 'resume:' };
    const watched = await startNodeProcess(env);
    const edge = await node(env);
    const retries: RetryEvent[] = [];
    const pushgate = client({ address: watched.grpcAddress, apiKey: KEY, ...QUICK, onRetry: (e) => retries.push(e) });
    // Enough attempts to outlast a node process start on a loaded machine (the default is about a minute).
    const stream = pushgate.watchPresence({ userIds: ['71'], includeSnapshot: true, maxReconnectAttempts: 1000 });
    const { events, result, count } = consume(stream);
    await waitFor('SNAPSHOT_COMPLETE', count(1), { timeoutMs: 10_000 });

    const a = await edge.connect('71', 'app');
    const aId = a.id;
    await waitFor('a to connect', count(3));
    await watched.kill();
    // While the watched node is down: the events land in Redis, and the stream retries.
    const b = await edge.connect('71', 'web');
    a.close();
    await waitFor('a reconnect attempt', () => retries.length >= 1);
    const restarted = await startNodeProcess({ ...env, PUSHGATE_GRPC_PORT: String(watched.grpcPort) });
    const c = await edge.connect('71', 'pc');
    await waitFor('the events missed and the new one', count(6), { timeoutMs: 15_000 });
    // A graceful restart ends the stream with OK instead: the stream resumes the same way.
    await restarted.terminate();
    const d = await edge.connect('71', 'app');
    await startNodeProcess({ ...env, PUSHGATE_GRPC_PORT: String(watched.grpcPort) });
    await waitFor('d after the second restart', count(7), { timeoutMs: 15_000 });

    expect(rows(events)).toEqual([
      [SNAPSHOT_COMPLETE, undefined, ''],
      [ONLINE, aId, ''],
      [CONNECTED, aId, ''],
      [CONNECTED, b.id, ''],
      [DISCONNECTED, aId, 'client_disconnect'],
      [CONNECTED, c.id, ''],
      [CONNECTED, d.id, ''],
    ]);
    expect(stream.cursor).toBe(events[6]!.cursor);
    expect(retries.some((r) => (r.error as PushgateClientError).code === GrpcStatus.UNAVAILABLE)).toBe(true);
    await stream.close();
    expect(await result).toBeUndefined();
  }, 60_000);
  it('resumes a receipt stream after the node it watches restarts, without losing or repeating events', async () => {
    const env = { ...API_KEYS, REDIS_URL: redis.url, PUSHGATE_REDIS_PREFIX: 'receipts:' };
    const watched = await startNodeProcess(env);
    const edge = await node(env);
    const retries: RetryEvent[] = [];
    const pushgate = client({ address: watched.grpcAddress, apiKey: KEY, ...QUICK, onRetry: (e) => retries.push(e) });
    const pusher = client({ address: edge.grpcAddress, apiKey: KEY });
    const store = (messageId: string) => pusher.pushToUser({ userId: '94', event: 'notice', messageId, deliveryMode: 'store' });
    const stream = pushgate.watchReceipts({ userIds: ['94'], maxReconnectAttempts: 1000 });
    const { events, result, count } = consume<ReceiptEvent>(stream);
    let warm = 0;
    while (events.length === 0) {
      await store(`w-${warm++}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // The first pushes may have come before the server subscribed the stream.
    const firstWarm = Number(events[0]!.messageId.slice('w-'.length));
    await waitFor('every warm-up event', count(warm - firstWarm));

    await watched.kill();
    await store('k-1');
    await waitFor('a reconnect attempt', () => retries.length >= 1);
    const restarted = await startNodeProcess({ ...env, PUSHGATE_GRPC_PORT: String(watched.grpcPort) });
    await store('k-2');
    await waitFor('the event missed and the new one', count(warm - firstWarm + 2), { timeoutMs: 15_000 });
    // A second kill, with an event while the node is down: it resumes from the cursor it reached last time.
    await restarted.kill();
    await store('k-3');
    await startNodeProcess({ ...env, PUSHGATE_GRPC_PORT: String(watched.grpcPort) });
    await waitFor('k-3 after the second restart', count(warm - firstWarm + 3), { timeoutMs: 15_000 });

    const warmIds = Array.from({ length: warm - firstWarm }, (_, i) => `w-${firstWarm + i}`);
    expect(events.map((e) => [e.kind, e.messageId])).toEqual(
      [...warmIds, 'k-1', 'k-2', 'k-3'].map((id) => [ReceiptEventKind.RECEIPT_EVENT_KIND_STORED, id]),
    );
    expect(stream.cursor).toBe(events.at(-1)!.cursor);
    expect(retries.some((r) => r.method === 'WatchReceipts' && (r.error as PushgateClientError).code === GrpcStatus.UNAVAILABLE)).toBe(
      true,
    );
    await stream.close();
    expect(await result).toBeUndefined();
  }, 60_000);
});
