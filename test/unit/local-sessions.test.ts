import { getEventListeners, setMaxListeners } from 'node:events';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket as ServerSocket } from 'socket.io';
import { type Socket as ClientSocket, io } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Outcome, PushMessage } from '../../src/domain/push.js';
import type { SessionRecord } from '../../src/domain/session.js';
import { LocalSessions } from '../../src/edge/local-sessions.js';
import { waitFor } from '../support/wait.js';

/**
 * LocalSessions against a real Socket.IO server on a loopback port and real clients: the server
 * indexes each socket on connection and forgets it on disconnect, as src/edge/socket-edge.ts does.
 */

type Ack = (...args: unknown[]) => void;

let httpServer: HttpServer;
let ioServer: Server;
let url: string;
const local = new LocalSessions();
const serverSockets = new Map<string, ServerSocket>();
const clients: ClientSocket[] = [];

beforeAll(async () => {
  httpServer = createServer();
  ioServer = new Server(httpServer);
  ioServer.on('connection', (socket) => {
    const now = Date.now();
    const userId = String(socket.handshake.auth.userId ?? 'u1');
    const record: SessionRecord = {
      sessionId: socket.id,
      userId,
      clientType: 'web',
      nodeId: 'node-a',
      connectedAtMs: now,
      lastSeenAtMs: now,
      remoteAddress: socket.handshake.address,
      userAgent: '',
    };
    serverSockets.set(socket.id, socket);
    local.add(socket, record);
    // A round trip a test uses to know that what a client sent before it has been handled.
    socket.on('roundtrip', (done: () => void) => done());
    socket.on('disconnect', () => local.remove(socket.id));
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await waitFor('the server to forget every closed socket', () => local.size === 0);
  serverSockets.clear();
});

afterAll(async () => {
  await new Promise<void>((resolve) => ioServer.close(() => resolve()));
});

interface Connected {
  readonly client: ClientSocket;
  /** The server's side of the same socket. */
  readonly server: ServerSocket;
  readonly id: string;
}

async function connect(userId = 'u1'): Promise<Connected> {
  const client = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, auth: { userId } });
  clients.push(client);
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('connect_error', reject);
  });
  const id = client.id!;
  const server = await waitFor('the server to index the socket', () => serverSockets.get(id));
  expect(local.get(id)?.socket).toBe(server);
  return { client, server, id };
}

/** Ack callbacks Socket.IO holds for a server socket: each push awaiting an ack leaves one until answered. */
function ackCallbacks(socket: ServerSocket): number {
  return (socket as unknown as { acks: Map<number, unknown> }).acks.size;
}

function message(overrides: Partial<PushMessage> = {}): PushMessage {
  return {
    event: 'order.updated',
    data: { orderId: 7 },
    ackTimeoutMs: 2000,
    noAck: false,
    messageId: 'msg-1',
    sentAtMs: 1_700_000_000_000,
    ...overrides,
  };
}

/** A client that takes pushes without answering, keeping their ack callbacks for the test to call. */
function holdAcks(client: ClientSocket): { data: unknown[]; acks: Ack[] } {
  const held = { data: [] as unknown[], acks: [] as Ack[] };
  client.on('order.updated', (data: unknown, ack: Ack) => {
    held.data.push(data);
    held.acks.push(ack);
  });
  return held;
}

function ackWith(client: ClientSocket, reply: (data: unknown) => unknown): void {
  client.on('order.updated', (data: unknown, ack: Ack) => ack(reply(data)));
}

/** Resolves once everything the client sent before has reached the server and been handled. */
function roundTrip(client: ClientSocket): Promise<void> {
  return client.timeout(2000).emitWithAck('roundtrip');
}

async function timed<T>(work: Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await work;
  return { value, ms: performance.now() - start };
}

/** Nothing left behind by a finished delivery: no wait, no Socket.IO ack callback, no abort listener. */
function expectNothingPending(signal: AbortSignal, ...sockets: ServerSocket[]): void {
  expect(local.pendingWaits()).toBe(0);
  for (const socket of sockets) expect(ackCallbacks(socket)).toBe(0);
  expect(getEventListeners(signal, 'abort')).toHaveLength(0);
}

describe('LocalSessions.deliver', () => {
  it('reports acked with the client’s ack data and the latency', async () => {
    const a = await connect();
    ackWith(a.client, (data) => ({ received: data, at: 'client' }));
    const signal = new AbortController().signal;

    const [result, ...rest] = await local.deliver([a.id], message(), signal);

    expect(rest).toEqual([]);
    expect(result).toMatchObject({ status: 'acked', ackData: { received: { orderId: 7 }, at: 'client' }, error: '' });
    expect(result!.latencyUs).toBeGreaterThan(0);
    expect(result!.latencyUs).toBeLessThan(2_000_000);
    expectNothingPending(signal, a.server);
  });

  it('reports the outcomes in the order of the session ids, whatever order the acks come in', async () => {
    const first = await connect();
    const second = await connect();
    const held = holdAcks(first.client);
    ackWith(second.client, () => 'second');
    const signal = new AbortController().signal;

    const delivered = local.deliver([first.id, second.id], message(), signal);
    // The second has acked, the first is still awaited; then the first acks.
    await waitFor('the second session to ack', () => local.pendingWaits() === 1 && held.acks.length === 1);
    held.acks[0]!('first');
    const outcomes = await delivered;

    expect(outcomes.map((o) => [o.status, o.ackData])).toEqual([
      ['acked', 'first'],
      ['acked', 'second'],
    ]);
    expectNothingPending(signal, first.server, second.server);
  });

  it('reports each session’s own outcome in one delivery: acked, timeout, disconnected (unknown), disconnected (closed while awaited)', async () => {
    const acker = await connect();
    const silent = await connect();
    const leaver = await connect();
    acker.client.on('order.updated', (_data: unknown, ack: Ack) => ack());
    holdAcks(silent.client);
    leaver.client.on('order.updated', () => leaver.client.close());
    const signal = new AbortController().signal;

    const { value: outcomes, ms } = await timed(
      local.deliver([silent.id, acker.id, 'no-such-session', leaver.id], message({ ackTimeoutMs: 300 }), signal),
    );

    expect(outcomes.map((o) => o.status)).toEqual(['timeout', 'acked', 'disconnected', 'disconnected']);
    expect(outcomes[0]).toEqual({ status: 'timeout', latencyUs: 0, ackData: undefined, error: '' });
    expect(outcomes[1]!.ackData).toBeUndefined();
    expect(outcomes[2]!.error).toMatch(/closed before the push reached it/);
    expect(outcomes[3]!.error).toMatch(/closed before it acked/);
    expect(ms).toBeGreaterThanOrEqual(290);
    expect(ms).toBeLessThan(1000);
    expectNothingPending(signal, acker.server, silent.server);
  });

  it('times out a client that never acks at ackTimeoutMs, drops its ack callback, and ignores a late ack', async () => {
    const a = await connect();
    const held = holdAcks(a.client);
    const signal = new AbortController().signal;

    const { value: outcomes, ms } = await timed(local.deliver([a.id], message({ ackTimeoutMs: 200 }), signal));

    expect(outcomes).toEqual([{ status: 'timeout', latencyUs: 0, ackData: undefined, error: '' }]);
    expect(ms).toBeGreaterThanOrEqual(190);
    expect(ms).toBeLessThan(600);
    expect(held.data).toEqual([{ orderId: 7 }]);
    expectNothingPending(signal, a.server);

    // The client answers after all: nothing changes, nothing is left behind.
    const before = structuredClone(outcomes);
    held.acks[0]!('too late');
    await roundTrip(a.client);
    expect(outcomes).toEqual(before);
    expectNothingPending(signal, a.server);

    // The socket still takes pushes.
    a.client.off('order.updated');
    ackWith(a.client, () => 'on time');
    expect((await local.deliver([a.id], message(), signal)).map((o) => [o.status, o.ackData])).toEqual([['acked', 'on time']]);
  });

  it('does not leak ack callbacks across many timed-out pushes to a silent client', async () => {
    const a = await connect();
    holdAcks(a.client);
    const signal = new AbortController().signal;
    // Twenty waits on one signal at once, as one call's would be; Node warns past ten by default.
    setMaxListeners(20, signal);

    const rounds = await Promise.all(Array.from({ length: 20 }, () => local.deliver([a.id], message({ ackTimeoutMs: 50 }), signal)));

    expect(rounds.flat().every((o) => o.status === 'timeout')).toBe(true);
    expectNothingPending(signal, a.server);
  });

  it('reports disconnected at once, long before the timeout, when the client closes while awaited', async () => {
    const a = await connect();
    const held = holdAcks(a.client);
    const signal = new AbortController().signal;

    const { value: outcomes, ms } = await timed(
      (async () => {
        const delivered = local.deliver([a.id], message({ ackTimeoutMs: 5000 }), signal);
        await waitFor('the client to receive the push', () => held.data.length === 1);
        a.client.close();
        return delivered;
      })(),
    );

    expect(outcomes).toEqual([{ status: 'disconnected', latencyUs: 0, ackData: undefined, error: 'session closed before it acked' }]);
    expect(ms).toBeLessThan(2000);
    expect(local.get(a.id)).toBeUndefined();
    expectNothingPending(signal);
  });

  it('reports disconnected at once when the server closes the socket while awaited', async () => {
    const a = await connect();
    const held = holdAcks(a.client);
    const signal = new AbortController().signal;

    const delivered = local.deliver([a.id], message({ ackTimeoutMs: 5000 }), signal);
    await waitFor('the client to receive the push', () => held.data.length === 1);
    const { value: outcomes, ms } = await timed(
      (async () => {
        a.server.disconnect(true);
        return delivered;
      })(),
    );

    expect(outcomes.map((o) => o.status)).toEqual(['disconnected']);
    expect(ms).toBeLessThan(1000);
    expectNothingPending(signal);
  });

  // The SessionTransport contract: no pending ack is left behind, on a closed socket either.
  it('drops the Socket.IO ack callback of a push whose socket closed while awaited', async () => {
    const a = await connect();
    const held = holdAcks(a.client);

    const delivered = local.deliver([a.id], message({ ackTimeoutMs: 5000 }), new AbortController().signal);
    await waitFor('the client to receive the push', () => held.data.length === 1);
    a.client.close();

    expect((await delivered).map((o) => o.status)).toEqual(['disconnected']);
    expect(ackCallbacks(a.server)).toBe(0);
  });

  it('reports disconnected at once for a session id it does not hold, without waiting', async () => {
    const signal = new AbortController().signal;

    const { value: outcomes, ms } = await timed(local.deliver(['no-such-session'], message({ ackTimeoutMs: 5000 }), signal));

    expect(outcomes).toEqual([
      { status: 'disconnected', latencyUs: 0, ackData: undefined, error: 'session closed before the push reached it' },
    ]);
    expect(ms).toBeLessThan(100);
    expectNothingPending(signal);
  });

  it('reports sent for a push that asks no ack, registers no ack callback, and still delivers it', async () => {
    const a = await connect();
    const received: unknown[][] = [];
    a.client.on('order.updated', (...args: unknown[]) => received.push(args));
    const signal = new AbortController().signal;

    const outcomes = await local.deliver([a.id, 'no-such-session'], message({ noAck: true, ackTimeoutMs: 5000 }), signal);

    expect(outcomes.map((o) => o.status)).toEqual(['sent', 'disconnected']);
    expect(outcomes[0]).toEqual({ status: 'sent', latencyUs: 0, ackData: undefined, error: '' });
    await waitFor('the client to receive the push', () => received.length === 1);
    // No ack function comes with the event: the client has nothing to answer.
    expect(received[0]).toEqual([{ orderId: 7 }]);
    expectNothingPending(signal, a.server);
  });

  it('fails the sessions still awaited at once when the signal aborts, keeping those already acked', async () => {
    const acker = await connect();
    const silent = await connect();
    ackWith(acker.client, () => 'ok');
    const held = holdAcks(silent.client);
    const controller = new AbortController();

    const delivered = local.deliver([acker.id, silent.id], message({ ackTimeoutMs: 5000 }), controller.signal);
    await waitFor('the first to ack and the second to receive', () => local.pendingWaits() === 1 && held.data.length === 1);
    const { value: outcomes, ms } = await timed(
      (async () => {
        controller.abort();
        return delivered;
      })(),
    );

    expect(outcomes.map((o) => [o.status, o.ackData])).toEqual([
      ['acked', 'ok'],
      ['failed', undefined],
    ]);
    expect(outcomes[1]!.error).toMatch(/cancelled|deadline/);
    expect(ms).toBeLessThan(100);
    expectNothingPending(controller.signal, acker.server, silent.server);
  });

  it('fails at once for a signal aborted before the call', async () => {
    const a = await connect();
    holdAcks(a.client);
    const controller = new AbortController();
    controller.abort();

    const { value: outcomes, ms } = await timed(local.deliver([a.id], message({ ackTimeoutMs: 5000 }), controller.signal));

    expect(outcomes.map((o: Outcome) => o.status)).toEqual(['failed']);
    expect(ms).toBeLessThan(100);
    expectNothingPending(controller.signal, a.server);
  });
});

describe('LocalSessions while a session replays its stored messages', () => {
  it('holds live pushes until the replay ends, sends replays at once, then the held ones in order', async () => {
    const a = await connect();
    const seen: unknown[] = [];
    a.client.on('order.updated', (data: unknown, ack?: Ack) => {
      seen.push(data);
      // The fire-and-forget push comes without an ack callback.
      ack?.();
    });
    const entry = local.get(a.id)!;
    const signal = new AbortController().signal;
    entry.holdLive();

    const live1 = local.deliver([a.id], message({ data: 'live 1', messageId: 'l1' }), signal);
    const sent = local.deliver([a.id], message({ data: 'fire and forget', messageId: 'l2', noAck: true }), signal);
    const replayed = await local.deliver([a.id], message({ data: 'stored', messageId: 's1', replay: true, attempt: 2 }), signal);
    expect(replayed[0]!.status).toBe('acked');
    expect(seen).toEqual(['stored']);
    expect(entry.holds('l1')).toBe(true);
    expect(entry.holds('s1')).toBe(false);

    entry.releaseLive();
    expect((await live1)[0]!.status).toBe('acked');
    expect((await sent)[0]!.status).toBe('sent');
    await roundTrip(a.client);
    expect(seen).toEqual(['stored', 'live 1', 'fire and forget']);
    expectNothingPending(signal, a.server);
  });

  it('never sends a held push whose wait ended before the replay did', async () => {
    const a = await connect();
    const seen: unknown[] = [];
    a.client.on('order.updated', (data: unknown) => seen.push(data));
    const entry = local.get(a.id)!;
    const signal = new AbortController().signal;
    entry.holdLive();

    const [outcome] = await local.deliver([a.id], message({ data: 'too late', ackTimeoutMs: 50 }), signal);
    expect(outcome!.status).toBe('timeout');
    entry.releaseLive();
    await roundTrip(a.client);
    expect(seen).toEqual([]);
    expectNothingPending(signal, a.server);
  });

  it('hands a client that asked for metadata (data, meta, ack), and others (data, ack)', async () => {
    const withMeta = await connect();
    const plain = await connect();
    local.get(withMeta.id)!.meta = true;
    const args: unknown[][] = [];
    for (const { client } of [withMeta, plain]) {
      client.on('order.updated', (...received: unknown[]) => {
        args.push(received.slice(0, -1));
        (received.at(-1) as Ack)();
      });
    }
    await local.deliver([withMeta.id, plain.id], message({ messageId: 'm-9', replay: true, attempt: 3 }), new AbortController().signal);
    expect(args).toHaveLength(2);
    expect(args).toEqual(
      expect.arrayContaining([
        [{ orderId: 7 }, { messageId: 'm-9', sentAt: 1_700_000_000_000, replay: true, attempt: 3 }],
        [{ orderId: 7 }],
      ]),
    );
  });
});
