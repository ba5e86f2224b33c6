import { performance } from 'node:perf_hooks';
import { status } from '@grpc/grpc-js';
import type { Socket } from 'socket.io-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeliveryStatus } from '../../src/gen/pushgate/v1/push_service.js';
import { ANSWER_BEFORE_DEADLINE_MS } from '../../src/grpc/deadline-fit.js';
import { grpcError } from '../support/grpc-client.js';
import { startNode, type TestNode } from '../support/node.js';
import { drain, serverAcks } from '../support/socket-client.js';
import { waitFor } from '../support/wait.js';

type Ack = (...reply: unknown[]) => void;

/** Records every event a client receives (name and arguments), in arrival order. */
function record(socket: Socket): { event: string; args: unknown[] }[] {
  const seen: { event: string; args: unknown[] }[] = [];
  socket.onAny((event: string, ...args: unknown[]) => seen.push({ event, args }));
  return seen;
}

describe('PushToUser', () => {
  let node: TestNode;
  beforeEach(async () => {
    node = await startNode();
  });
  afterEach(async () => {
    await node.stop();
  });

  it('delivers to the app, pc and web clients of one user and returns each ack', async () => {
    const clients = await Promise.all(['app', 'pc', 'web'].map((type) => node.connect('61', type)));
    const received: unknown[] = [];
    clients.forEach((socket, i) => {
      socket.on('notice', (data: unknown, ack: (reply: unknown) => void) => {
        received.push(data);
        ack({ seenBy: ['app', 'pc', 'web'][i] });
      });
    });

    const response = await node.client.pushToUser({ userId: '61', event: 'notice', data: { title: 'approve PO-7', amount: 12.5 } });

    expect(received).toEqual([
      { title: 'approve PO-7', amount: 12.5 },
      { title: 'approve PO-7', amount: 12.5 },
      { title: 'approve PO-7', amount: 12.5 },
    ]);
    expect(response.acked).toBe(3);
    expect(response.timedOut).toBe(0);
    expect(response.failed).toBe(0);
    expect(response.messageId).toMatch(/^[0-9a-f-]{36}$/);
    const byType = new Map(response.deliveries.map((d) => [d.session!.clientType, d]));
    expect([...byType.keys()].sort()).toEqual(['app', 'pc', 'web']);
    for (const [type, delivery] of byType) {
      expect(delivery.status).toBe(DeliveryStatus.DELIVERY_STATUS_ACKED);
      expect(delivery.ackData).toEqual({ seenBy: type });
      expect(delivery.latencyUs).toBeGreaterThan(0);
      expect(delivery.latencyUs).toBeLessThan(1_000_000);
      expect(delivery.session!.userId).toBe('61');
      expect(delivery.session!.nodeId).toBe(node.app.config.server.nodeId);
    }
    expect(new Set(response.deliveries.map((d) => d.session!.sessionId))).toEqual(new Set(clients.map((c) => c.id)));
  });

  it('reports DISCONNECTED at once for a client that closes while awaited', async () => {
    const quitter = await node.connect('7', 'web');
    quitter.on('notice', () => {
      setTimeout(() => quitter.close(), 50);
    });
    const started = Date.now();
    const response = await node.client.pushToUser({ userId: '7', event: 'notice', data: 1, ackTimeoutMs: 5000 });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(response.deliveries.map((d) => d.status)).toEqual([DeliveryStatus.DELIVERY_STATUS_DISCONNECTED]);
    expect(response.failed).toBe(1);
    await waitFor('no pending waits', () => node.app.local.pendingWaits() === 0);
  });

  it('pushes only to the client types in client_types, matched case-insensitively', async () => {
    const [app, pc, web] = await Promise.all(['app', 'pc', 'web'].map((type) => node.connect('62', type)));
    const clients = [app!, pc!, web!];
    const logs = clients.map(record);
    for (const socket of clients) socket.on('notice', (_data: unknown, ack: Ack) => ack('ok'));

    const onlyWeb = await node.client.pushToUser({ userId: '62', event: 'notice', data: 'web only', clientTypes: ['WEB'] });
    expect(onlyWeb.deliveries.map((d) => [d.session!.sessionId, d.session!.clientType, d.status])).toEqual([
      [web!.id, 'web', DeliveryStatus.DELIVERY_STATUS_ACKED],
    ]);
    expect(onlyWeb.acked).toBe(1);

    const appAndPc = await node.client.pushToUser({ userId: '62', event: 'notice', data: 'app and pc', clientTypes: ['app', 'Pc'] });
    expect(new Set(appAndPc.deliveries.map((d) => d.session!.sessionId))).toEqual(new Set([app!.id, pc!.id]));
    expect(appAndPc.deliveries.every((d) => d.status === DeliveryStatus.DELIVERY_STATUS_ACKED)).toBe(true);
    expect(appAndPc.acked).toBe(2);

    await drain(node, '62', clients);
    const notices = logs.map((log) => log.filter((e) => e.event === 'notice').map((e) => e.args[0]));
    expect(notices).toEqual([['app and pc'], ['app and pc'], ['web only']]);
  });

  it('reports TIMEOUT for a client that never acks, and returns once the ack timeout has passed', async () => {
    const silent = await node.connect('63', 'app');
    const polite = await node.connect('63', 'web');
    const silentLog = record(silent);
    silent.on('notice', () => {
      // Receives the event but never calls the ack callback.
    });
    polite.on('notice', (_data: unknown, ack: Ack) => ack({ ok: true }));

    const started = performance.now();
    const response = await node.client.pushToUser({ userId: '63', event: 'notice', data: { n: 1 }, ackTimeoutMs: 300 });
    const elapsed = performance.now() - started;

    expect(elapsed).toBeGreaterThanOrEqual(295);
    expect(elapsed).toBeLessThan(1000);
    const byId = new Map(response.deliveries.map((d) => [d.session!.sessionId, d]));
    expect(byId.size).toBe(2);
    expect(byId.get(silent.id!)!.status).toBe(DeliveryStatus.DELIVERY_STATUS_TIMEOUT);
    expect(byId.get(silent.id!)!.ackData).toBeUndefined();
    expect(byId.get(silent.id!)!.latencyUs).toBe(0);
    expect(byId.get(polite.id!)!.status).toBe(DeliveryStatus.DELIVERY_STATUS_ACKED);
    expect(byId.get(polite.id!)!.ackData).toEqual({ ok: true });
    expect(response.acked).toBe(1);
    expect(response.timedOut).toBe(1);
    expect(response.failed).toBe(0);
    // The silent client did get the event; it just did not answer.
    expect(silentLog.filter((e) => e.event === 'notice').map((e) => e.args[0])).toEqual([{ n: 1 }]);
    expect(node.app.local.pendingWaits()).toBe(0);
    expect(serverAcks(node, silent.id!)).toBe(0);
  });

  it('returns OK with no deliveries for a user with no live session', async () => {
    await node.connect('someone-else', 'web');
    const started = performance.now();
    const response = await node.client.pushToUser({ userId: 'nobody-home', event: 'notice', data: 1, ackTimeoutMs: 2000 });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(response.deliveries).toEqual([]);
    expect(response.acked).toBe(0);
    expect(response.timedOut).toBe(0);
    expect(response.failed).toBe(0);
    expect(response.messageId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('with no_ack reports SENT without waiting, and the client still receives the event', async () => {
    const clients = [await node.connect('64', 'app'), await node.connect('64', 'pc')];
    const received: unknown[][] = [];
    for (const socket of clients) socket.on('notice', (...args: unknown[]) => received.push(args));

    const started = performance.now();
    const response = await node.client.pushToUser({
      userId: '64',
      event: 'notice',
      data: { fire: 'forget' },
      noAck: true,
      ackTimeoutMs: 5000,
    });
    expect(performance.now() - started).toBeLessThan(1000);

    expect(new Set(response.deliveries.map((d) => d.session!.sessionId))).toEqual(new Set(clients.map((c) => c.id)));
    for (const delivery of response.deliveries) {
      expect(delivery.status).toBe(DeliveryStatus.DELIVERY_STATUS_SENT);
      expect(delivery.latencyUs).toBe(0);
      expect(delivery.ackData).toBeUndefined();
      expect(delivery.error).toBe('');
    }
    expect([response.acked, response.timedOut, response.failed]).toEqual([0, 0, 0]);
    await waitFor('both clients to receive the event', () => received.length === 2);
    // Fire and forget: the client is handed the data alone, no ack callback to call.
    expect(received).toEqual([[{ fire: 'forget' }], [{ fire: 'forget' }]]);
    expect(node.app.local.pendingWaits()).toBe(0);
  });

  it('leaves ack_data unset when the client acks with no argument', async () => {
    const socket = await node.connect('65', 'web');
    socket.on('notice', (_data: unknown, ack: Ack) => ack());
    const response = await node.client.pushToUser({ userId: '65', event: 'notice', data: 'x' });
    expect(response.deliveries).toHaveLength(1);
    expect(response.deliveries[0]!.status).toBe(DeliveryStatus.DELIVERY_STATUS_ACKED);
    expect(response.deliveries[0]!.ackData).toBeUndefined();
    expect(response.acked).toBe(1);
  });

  it('echoes a caller-supplied message_id', async () => {
    const socket = await node.connect('66', 'web');
    socket.on('notice', (_data: unknown, ack: Ack) => ack(true));
    const response = await node.client.pushToUser({ userId: '66', event: 'notice', data: 1, messageId: 'order-4711/approval' });
    expect(response.messageId).toBe('order-4711/approval');
    expect(response.acked).toBe(1);
    const nobody = await node.client.pushToUser({ userId: 'nobody', event: 'notice', messageId: 'mine-too' });
    expect(nobody.messageId).toBe('mine-too');
  });

  it('delivers data of every JSON shape unchanged, and returns ack data of every shape unchanged', async () => {
    const socket = await node.connect('67', 'app');
    const received: unknown[] = [];
    socket.on('notice', (data: unknown, ack: Ack) => {
      received.push(data);
      ack(data);
    });
    const shapes: unknown[] = [
      'plain text with ünïcödé ✓',
      '',
      42,
      -3.25,
      0,
      true,
      false,
      [1, 'two', { three: 3 }, null, [true, []]],
      [],
      {
        order: {
          id: 'PO-7',
          lines: [
            { sku: 'A', qty: 2 },
            { sku: 'B', qty: 0.5 },
          ],
          approved: false,
          note: null,
        },
        tags: {},
      },
      {},
      null,
    ];
    for (const data of shapes) {
      const response = await node.client.pushToUser({ userId: '67', event: 'notice', data });
      expect(response.deliveries[0]!.status).toBe(DeliveryStatus.DELIVERY_STATUS_ACKED);
      expect(response.deliveries[0]!.ackData).toEqual(data);
    }
    expect(received).toEqual(shapes);
  });

  it('delivers null when the request has no data at all', async () => {
    const socket = await node.connect('68', 'app');
    const received: unknown[][] = [];
    socket.on('notice', (...args: unknown[]) => {
      const ack = args.pop() as Ack;
      received.push(args);
      ack();
    });
    const response = await node.client.pushToUser({ userId: '68', event: 'notice' });
    expect(response.acked).toBe(1);
    expect(received).toEqual([[null]]);
  });

  it('refuses bad requests with INVALID_ARGUMENT naming the field, and pushes nothing', async () => {
    const socket = await node.connect('69', 'web');
    const log = record(socket);
    const valid = { userId: '69', event: 'notice', data: 1, ackTimeoutMs: 200 };
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['empty user_id', { userId: '' }, /user_id/],
      ['empty event', { event: '' }, /event/],
      ...[
        'connect',
        'connect_error',
        'disconnect',
        'disconnecting',
        'newListener',
        'removeListener',
        'pushgate:disconnect',
        // Socket.IO v2 clients run their own lifecycle handlers for these; pushgate: is ours whole.
        'error',
        'reconnect',
        'reconnect_failed',
        'connect_timeout',
        'reconnecting',
        'ping',
        'pong',
        'pushgate:refresh',
        'pushgate:anything',
      ].map((event): [string, Record<string, unknown>, RegExp] => [`reserved event ${event}`, { event }, new RegExp(`event "${event}"`)]),
      ['unknown client type', { clientTypes: ['web', 'tv'] }, /client_types\[1\].*tv/],
      ['ack_timeout_ms above the max', { ackTimeoutMs: 60_001 }, /ack_timeout_ms/],
      ['event name too long', { event: 'e'.repeat(129) }, /event/],
      ['message_id too long', { messageId: 'm'.repeat(257) }, /message_id/],
    ];
    for (const [what, change, field] of cases) {
      const err = await grpcError(node.client.pushToUser({ ...valid, ...change }));
      expect({ what, code: err.code }).toEqual({ what, code: status.INVALID_ARGUMENT });
      expect(err.details, what).toMatch(field);
      expect(err.metadata.get('pushgate-error-code'), what).toEqual(['invalid_argument']);
    }
    // The largest allowed ack timeout is accepted.
    socket.on('notice', (_data: unknown, ack: Ack) => ack());
    const ok = await node.client.pushToUser({ ...valid, ackTimeoutMs: 60_000 });
    expect(ok.acked).toBe(1);

    await drain(node, '69', [socket]);
    expect(log.filter((e) => !e.event.startsWith('marker-')).map((e) => [e.event, e.args[0]])).toEqual([['notice', 1]]);
  });

  it('fails with DEADLINE_EXCEEDED by the call deadline and leaves no wait behind', async () => {
    const socket = await node.connect('70', 'pc');
    const log = record(socket);

    const started = performance.now();
    const call = grpcError(
      node.client.pushToUser({ userId: '70', event: 'notice', data: 'never acked', ackTimeoutMs: 5000 }, { deadline: Date.now() + 300 }),
    );
    await waitFor('the push to be awaiting the ack', () => node.app.local.pendingWaits() === 1 && serverAcks(node, socket.id!) === 1);
    const err = await call;
    const elapsed = performance.now() - started;

    expect(err.code).toBe(status.DEADLINE_EXCEEDED);
    // Answered just before the deadline (so the client does not reset the stream itself), or by
    // the client's own deadline on a machine too busy to answer in time.
    expect(elapsed).toBeGreaterThanOrEqual(300 - ANSWER_BEFORE_DEADLINE_MS - 10);
    expect(elapsed).toBeLessThan(1500);
    // Released right after the deadline, not when the 5 s ack timeout finally fires.
    await waitFor('the abandoned wait to be released', () => node.app.local.pendingWaits() === 0, { timeoutMs: 500 });
    await waitFor('the ack callback to be dropped', () => serverAcks(node, socket.id!) === 0, { timeoutMs: 500 });
    expect(log.map((e) => e.event)).toEqual(['notice']);
    // The session is still usable afterwards.
    socket.on('notice', (_data: unknown, ack: Ack) => ack('late but fine'));
    const next = await node.client.pushToUser({ userId: '70', event: 'notice', data: 2, ackTimeoutMs: 2000 });
    expect(next.deliveries.map((d) => d.ackData)).toEqual(['late but fine']);
  });

  it('keeps a caller’s connection when its deadlines pass faster than HTTP/2 allows stream resets', async () => {
    // Finding of the reliability suite: each call the client times out itself is a RST_STREAM,
    // and Node's HTTP/2 server closes a connection past 1,000 resets plus 33 a second (its
    // rapid-reset guard), failing every call on it with INTERNAL. The node now answers a push that
    // would outlast its deadline just before it, so the client reads the status and resets nothing.
    const socket = await node.connect('72', 'app');
    socket.on('notice', () => {}); // never acks
    const codes = new Map<number, number>();
    const calls: Promise<void>[] = [];
    // 1,300 calls in about 2.6 s: past the guard's 1,000 + 33/s, on one channel.
    for (let batch = 0; batch < 26; batch++) {
      for (let i = 0; i < 50; i++) {
        const request = { userId: '72', event: 'notice', data: i, ackTimeoutMs: 5000 };
        calls.push(
          grpcError(node.client.pushToUser(request, { deadline: Date.now() + 100 })).then((err) => {
            codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
          }),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await Promise.all(calls);
    expect(Object.fromEntries(codes)).toEqual({ [status.DEADLINE_EXCEEDED]: 1300 });
    await waitFor('every abandoned wait to be released', () => node.app.local.pendingWaits() === 0);
  }, 20_000);

  it('drops the ack callbacks of a client that never acks, however many pushes time out', async () => {
    const socket = await node.connect('71', 'app');
    let received = 0;
    socket.on('notice', () => {
      received++;
    });
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => node.client.pushToUser({ userId: '71', event: 'notice', data: i, ackTimeoutMs: 50 })),
    );
    for (const response of responses) {
      expect(response.deliveries.map((d) => d.status)).toEqual([DeliveryStatus.DELIVERY_STATUS_TIMEOUT]);
      expect(response.timedOut).toBe(1);
    }
    expect(received).toBe(50);
    expect(serverAcks(node, socket.id!)).toBe(0);
    expect(node.app.local.pendingWaits()).toBe(0);
  });

  it('ignores an ack that arrives after the timeout', async () => {
    const socket = await node.connect('72', 'app');
    let lateAckSent = false;
    socket.on('notice', (_data: unknown, ack: Ack) => {
      // Deliberately too late: the push below waits 100 ms.
      setTimeout(() => {
        ack('too late');
        lateAckSent = true;
      }, 300);
    });
    const response = await node.client.pushToUser({ userId: '72', event: 'notice', data: 1, ackTimeoutMs: 100 });
    expect(response.deliveries.map((d) => d.status)).toEqual([DeliveryStatus.DELIVERY_STATUS_TIMEOUT]);
    await waitFor('the late ack to be sent', () => lateAckSent);
    await drain(node, '72', [socket]);
    expect(socket.connected).toBe(true);
    expect(serverAcks(node, socket.id!)).toBe(0);
    expect(node.app.local.pendingWaits()).toBe(0);
  });

  it('reports DISCONNECTED for a client that closes while awaited, ACKED for the others, well before the timeout', async () => {
    const acking = [await node.connect('73', 'app'), await node.connect('73', 'pc')];
    const quitter = await node.connect('73', 'web');
    const quitterId = quitter.id; // the client forgets its id once closed
    for (const socket of acking) socket.on('notice', (_data: unknown, ack: Ack) => ack('got it'));
    quitter.on('notice', () => quitter.close());

    const started = performance.now();
    const response = await node.client.pushToUser({ userId: '73', event: 'notice', data: 'bye?', ackTimeoutMs: 5000 });
    expect(performance.now() - started).toBeLessThan(2000);

    const byId = new Map(response.deliveries.map((d) => [d.session!.sessionId, d]));
    expect(byId.size).toBe(3);
    for (const socket of acking) {
      expect(byId.get(socket.id!)!.status).toBe(DeliveryStatus.DELIVERY_STATUS_ACKED);
      expect(byId.get(socket.id!)!.ackData).toBe('got it');
    }
    const gone = byId.get(quitterId!)!;
    expect(gone.status).toBe(DeliveryStatus.DELIVERY_STATUS_DISCONNECTED);
    expect(gone.error).not.toBe('');
    expect(gone.ackData).toBeUndefined();
    expect([response.acked, response.timedOut, response.failed]).toEqual([2, 0, 1]);
    expect(node.app.local.pendingWaits()).toBe(0);
  });
});

describe('PushToUser with PUSHGATE_MAX_PAYLOAD_BYTES=1024', () => {
  let node: TestNode;
  beforeEach(async () => {
    node = await startNode({ PUSHGATE_MAX_PAYLOAD_BYTES: '1024' });
  });
  afterEach(async () => {
    await node.stop();
  });

  it('refuses data over the limit with INVALID_ARGUMENT naming data, and delivers data under it', async () => {
    const socket = await node.connect('80', 'web');
    const log = record(socket);
    socket.on('notice', (_data: unknown, ack: Ack) => ack('ok'));

    for (const data of [
      'x'.repeat(2000),
      { rows: Array.from({ length: 100 }, (_, i) => ({ i, label: `row ${i}` })) },
      ['y'.repeat(1100)],
    ]) {
      const err = await grpcError(node.client.pushToUser({ userId: '80', event: 'notice', data }));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(/\bdata\b/);
      expect(err.details).toMatch(/1024/);
    }

    const small = { text: 'z'.repeat(900) };
    const response = await node.client.pushToUser({ userId: '80', event: 'notice', data: small });
    expect(response.deliveries.map((d) => d.status)).toEqual([DeliveryStatus.DELIVERY_STATUS_ACKED]);

    await drain(node, '80', [socket]);
    expect(log.filter((e) => e.event === 'notice').map((e) => e.args[0])).toEqual([small]);
  });
});
