import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket as ServerSocket } from 'socket.io';
import { io } from 'socket.io-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect, type DeviceClient, type DeviceError, type DeviceOptions, type Meta } from '../../packages/device/src/core.js';
import { signToken } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

/**
 * The device core (packages/device/src/core.ts) against a bare Socket.IO server that plays the
 * node's part of the protocol itself: it emits `(data, meta, ack)`, replays ids, drops connections,
 * refuses handshakes and sends `pushgate:disconnect` notices. Nothing here depends on pushgate's server.
 */

let server: Server;
let url: string;
/** Server-side sockets in connection order, and the handshake auth each sent. */
let sockets: ServerSocket[];
let auths: Record<string, unknown>[];
/** Decides each handshake: undefined admits it, a code refuses it with that `connect_error` data. */
let admit: (auth: Record<string, unknown>) => string | undefined;
const clients: DeviceClient<Events>[] = [];

interface Events extends Record<string, unknown> {
  notice: { n: number };
}

beforeEach(async () => {
  sockets = [];
  auths = [];
  admit = () => undefined;
  const http = createServer();
  server = new Server(http);
  server.use((socket, next) => {
    auths.push(socket.handshake.auth);
    const code = admit(socket.handshake.auth);
    if (code === undefined) return next();
    const err = Object.assign(new Error(`refused: ${code}`), { data: { code } });
    next(err);
  });
  server.on('connection', (socket) => sockets.push(socket));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function device(options: Partial<DeviceOptions> = {}): DeviceClient<Events> {
  const client = connect<Events>({
    url,
    token: 'a-token',
    clientType: 'web',
    io,
    reconnect: { reconnectionDelay: 50, reconnectionDelayMax: 100 },
    socketOptions: { transports: ['websocket'] },
    ...options,
  });
  clients.push(client);
  return client;
}

function meta(messageId: string, extra: Partial<Meta> = {}): Meta {
  return { messageId, sentAt: 1_700_000_000_000, replay: false, attempt: 1, ...extra };
}

/** Emits like the node: `(data, meta, ack)`; resolves with the ack's value, or 'no ack' after `ms`. */
function push(socket: ServerSocket, id: string, data: unknown, ms = 2000, extra: Partial<Meta> = {}): Promise<unknown> {
  return socket
    .timeout(ms)
    .emitWithAck('notice', data, meta(id, extra))
    .catch(() => 'no ack');
}

/** A promise the test resolves by hand, to hold a handler mid-run. */
function gate<T = unknown>(): { promise: Promise<T>; open(value: T): void; fail(err: Error): void } {
  let open!: (value: T) => void;
  let fail!: (err: Error) => void;
  const promise = new Promise<T>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

async function connected(count: number): Promise<ServerSocket> {
  await waitFor(`${count} connection(s)`, () => sockets.filter((s) => s.connected).length === 1 && sockets.length >= count);
  return sockets[count - 1]!;
}

describe('device core: acks and de-duplication', () => {
  it('runs a handler once per message id and acks every delivery with its return value', async () => {
    const client = device();
    const seen: [unknown, Meta][] = [];
    client.on('notice', (data, m) => {
      seen.push([data, m]);
      return { got: data.n };
    });
    const socket = await connected(1);
    expect(auths[0]).toEqual({ token: 'a-token', clientType: 'web', meta: true });

    expect(await push(socket, 'm1', { n: 1 })).toEqual({ got: 1 });
    expect(await push(socket, 'm1', { n: 1 }, 2000, { replay: true, attempt: 2 })).toEqual({ got: 1 });
    expect(await push(socket, 'm2', { n: 2 })).toEqual({ got: 2 });

    expect(seen).toEqual([
      [{ n: 1 }, meta('m1')],
      [{ n: 2 }, meta('m2')],
    ]);
    expect(client.stats).toEqual({ handled: 2, failed: 0, duplicates: 1, replayed: 1 });
  });

  it('acks without data when the handler returns undefined', async () => {
    const client = device();
    client.on('notice', () => undefined);
    const socket = await connected(1);
    const args = await new Promise<unknown[]>((resolve) => socket.emit('notice', { n: 1 }, meta('m1'), (...a: unknown[]) => resolve(a)));
    expect(args).toEqual([]);
  });

  it('does not ack when the handler throws or rejects, reports it, and runs it again on redelivery', async () => {
    const client = device();
    const errors: DeviceError[] = [];
    client.onError((err) => errors.push(err));
    let calls = 0;
    client.on('notice', async (data) => {
      calls++;
      if (calls === 1) throw new Error('boom');
      if (calls === 2) return Promise.reject(new Error('later boom'));
      return `ok ${data.n}`;
    });
    const socket = await connected(1);

    expect(await push(socket, 'm1', { n: 1 }, 300)).toBe('no ack');
    expect(await push(socket, 'm1', { n: 1 }, 300)).toBe('no ack');
    expect(await push(socket, 'm1', { n: 1 })).toBe('ok 1');
    expect(calls).toBe(3);
    expect(errors.map((e) => [e.code, e.details.event, e.details.messageId, e.message])).toEqual([
      ['handler_failed', 'notice', 'm1', 'the "notice" handler failed: boom'],
      ['handler_failed', 'notice', 'm1', 'the "notice" handler failed: later boom'],
    ]);
    expect(client.stats).toMatchObject({ handled: 1, failed: 2 });
  });

  it('a synchronous throw is not acked either', async () => {
    const client = device();
    client.on('notice', () => {
      throw new Error('sync boom');
    });
    const socket = await connected(1);
    expect(await push(socket, 'm1', { n: 1 }, 300)).toBe('no ack');
  });

  it('does not run a handler twice for an id that arrives while it runs, and acks both once it resolves', async () => {
    const client = device();
    const held = gate<string>();
    let calls = 0;
    client.on('notice', () => {
      calls++;
      return held.promise;
    });
    const socket = await connected(1);
    const first = push(socket, 'm1', { n: 1 });
    const second = push(socket, 'm1', { n: 1 });
    await waitFor('the handler to start', () => calls === 1);
    let settled = false;
    void Promise.race([first, second]).then(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(settled).toBe(false);
    held.open('done');
    expect(await Promise.all([first, second])).toEqual(['done', 'done']);
    expect(calls).toBe(1);
  });

  it('a running handler that fails acks neither delivery, and the next delivery runs it again', async () => {
    const client = device();
    const held = gate<string>();
    let calls = 0;
    client.on('notice', () => (++calls === 1 ? held.promise : 'second run'));
    const socket = await connected(1);
    const first = push(socket, 'm1', { n: 1 }, 500);
    const second = push(socket, 'm1', { n: 1 }, 500);
    await waitFor('the handler to start', () => calls === 1);
    held.fail(new Error('no'));
    expect(await Promise.all([first, second])).toEqual(['no ack', 'no ack']);
    expect(await push(socket, 'm1', { n: 1 })).toBe('second run');
  });

  it('remembers only the last dedupeWindow ids', async () => {
    const client = device({ dedupeWindow: 2 });
    const runs: string[] = [];
    client.on('notice', (_data, m) => void runs.push(m.messageId));
    const socket = await connected(1);
    for (const id of ['a', 'b', 'c', 'b', 'c', 'a']) await push(socket, id, { n: 0 });
    expect(runs).toEqual(['a', 'b', 'c', 'a']);
  });

  it('sends no ack on a later connection for an event of an earlier one; its replay is acked from memory', async () => {
    const client = device();
    const held = gate<string>();
    const runs: string[] = [];
    client.on('notice', (_data, m) => {
      runs.push(m.messageId);
      return m.messageId === 'x' ? held.promise : 'y done';
    });
    const first = await connected(1);
    void push(first, 'x', { n: 1 });
    await waitFor('x to start', () => runs.length === 1);
    first.conn.close();
    const second = await connected(2);
    // Every ack packet the node's new socket receives (Socket.IO packet type 3).
    const acks: string[] = [];
    second.conn.on('packet', (packet: { type: string; data?: unknown }) => {
      if (packet.type === 'message' && String(packet.data).startsWith('3')) acks.push(String(packet.data).replace(/^3\d+/, ''));
    });
    held.open('x done');
    expect(await push(second, 'y', { n: 2 })).toBe('y done');
    // x, replayed on connection 2, is acked at once without running again.
    expect(await push(second, 'x', { n: 1 }, 2000, { replay: true, attempt: 2 })).toBe('x done');
    expect(runs).toEqual(['x', 'y']);
    expect(acks).toEqual(['["y done"]', '["x done"]']);
  });

  it('handles events from a node that sends no meta, without de-duplication', async () => {
    const client = device();
    const metas: Meta[] = [];
    client.on('notice', (_data, m) => {
      metas.push(m);
      return 'ok';
    });
    const socket = await connected(1);
    expect(await socket.timeout(2000).emitWithAck('notice', { n: 1 })).toBe('ok');
    expect(await socket.timeout(2000).emitWithAck('notice', { n: 1 })).toBe('ok');
    expect(metas.map((m) => [m.messageId, m.replay, m.attempt])).toEqual([
      ['', false, 1],
      ['', false, 1],
    ]);
  });

  it('refuses reserved event names and a second handler for one event; an unsubscribed event is not acked', async () => {
    const client = device();
    expect(() => client.on('pushgate:refresh' as 'notice', () => 1)).toThrow(TypeError);
    expect(() => client.on('connect' as 'notice', () => 1)).toThrow(TypeError);
    const off = client.on('notice', () => 1);
    expect(() => client.on('notice', () => 2)).toThrow(/already has a handler/);
    const socket = await connected(1);
    expect(await push(socket, 'm1', { n: 1 })).toBe(1);
    off();
    expect(await push(socket, 'm2', { n: 2 }, 300)).toBe('no ack');
    client.on('notice', () => 3);
    expect(await push(socket, 'm3', { n: 3 })).toBe(3);
  });
});

describe('device core: connections', () => {
  it('asks the token function at every connect', async () => {
    let n = 0;
    const client = device({ token: async () => `token-${++n}` });
    const first = await connected(1);
    first.conn.close();
    await connected(2);
    expect(auths.map((a) => a.token)).toEqual(['token-1', 'token-2']);
    // The server side is up first; the client learns of it on its next read.
    await waitFor('the client to see its connect', () => client.connected);
    expect(client.sessionId).toBe(sockets[1]!.id);
  });

  it('stops on a final refusal (token, client type) and reports its code', async () => {
    admit = () => 'token_expired';
    const client = device();
    const closed: string[] = [];
    client.onClose((reason) => closed.push(reason));
    await waitFor('the close', () => closed.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(closed).toEqual(['token_expired']);
    expect(auths).toHaveLength(1);
  });

  it('retries a refusal worth retrying (registry_unavailable) with backoff, and a failed token function', async () => {
    let refusals = 2;
    admit = (auth) => (auth.token === undefined ? 'token_missing' : refusals-- > 0 ? 'registry_unavailable' : undefined);
    let calls = 0;
    const client = device({
      token: () => {
        if (++calls === 1) throw new Error('auth backend down');
        return 'fresh';
      },
    });
    const errors: string[] = [];
    client.onError((err) => errors.push(`${err.code}:${err.details.serverCode ?? ''}`));
    await connected(1);
    expect(errors).toEqual([
      'token_failed:',
      'connect_refused:token_missing',
      'connect_refused:registry_unavailable',
      'connect_refused:registry_unavailable',
    ]);
    expect(auths.map((a) => a.token)).toEqual([undefined, 'fresh', 'fresh', 'fresh']);
  });

  it('a kicked session stays closed; a shutdown notice reconnects', async () => {
    const client = device();
    const statuses: unknown[] = [];
    const closed: string[] = [];
    client.onStatus((s) => statuses.push(s.type === 'connected' ? 'connected' : s));
    client.onClose((reason) => closed.push(reason));
    const first = await connected(1);
    first.emit('pushgate:disconnect', { reason: 'server_shutdown' });
    first.disconnect(true);
    const second = await connected(2);
    second.emit('pushgate:disconnect', { reason: 'kicked' });
    second.disconnect(true);
    await waitFor('the close', () => closed.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(sockets).toHaveLength(2);
    expect(closed).toEqual(['kicked']);
    expect(statuses).toEqual([
      'connected',
      { type: 'disconnected', reason: 'server_shutdown', willReconnect: true },
      'connected',
      { type: 'disconnected', reason: 'kicked', willReconnect: false },
    ]);
  });

  it('token_expired reconnects with a token function, and closes with a fixed token', async () => {
    const fixed = device();
    const closed: string[] = [];
    fixed.onClose((reason) => closed.push(reason));
    const first = await connected(1);
    first.emit('pushgate:disconnect', { reason: 'token_expired' });
    first.disconnect(true);
    await waitFor('the close', () => closed.length === 1);
    expect(closed).toEqual(['token_expired']);

    device({ token: () => 'fresh' });
    const second = await connected(2);
    second.emit('pushgate:disconnect', { reason: 'token_expired' });
    second.disconnect(true);
    await connected(3);
    expect(auths.map((a) => a.token)).toEqual(['a-token', 'fresh', 'fresh']);
  });

  it('refreshes a JWT before its exp with pushgate:refresh, and again before the fresh one expires', async () => {
    const refreshed: unknown[] = [];
    server.on('connection', (socket) =>
      socket.on('pushgate:refresh', (token: unknown, ack: (answer: unknown) => void) => {
        refreshed.push(token);
        ack({ ok: true, expiresAt: new Date().toISOString() });
      }),
    );
    const tokens: string[] = [];
    device({
      // 3 s tokens refreshed 2.5 s before exp: every 0.5 s.
      token: async () => {
        tokens.push(await signToken(`u${tokens.length}`, { expiresIn: 3 }));
        return tokens.at(-1)!;
      },
      refreshBeforeExpiryMs: 2500,
    });
    await connected(1);
    await waitFor('two refreshes', () => refreshed.length >= 2, { timeoutMs: 4000 });
    expect(refreshed.slice(0, 2)).toEqual(tokens.slice(1, 3));
  });

  it('reports a refused refresh and tries again', async () => {
    server.on('connection', (socket) =>
      socket.on('pushgate:refresh', (_token: unknown, ack: (answer: unknown) => void) =>
        ack({ ok: false, code: 'token_claims_invalid', message: 'the fresh token is for another user' }),
      ),
    );
    const client = device({ token: () => signToken('u', { expiresIn: 4 }), refreshBeforeExpiryMs: 3500 });
    const errors: DeviceError[] = [];
    client.onError((err) => errors.push(err));
    await waitFor('two refusals', () => errors.length >= 2, { timeoutMs: 4000 });
    expect(errors[0]!.code).toBe('refresh_failed');
    expect(errors[0]!.details.serverCode).toBe('token_claims_invalid');
    expect(errors[0]!.message).toMatch(/another user/);
  });

  // A Node process ends by itself only once no timer or socket is left: a client run in a child
  // process, closed, must let it end. The first case shows that an open client keeps it alive.
  it.each([
    ['an open client keeps its process alive', 'open', 'connected'],
    ['close() while connected with a refresh scheduled', 'close', 'connected'],
    ['close() mid-backoff after a refusal', 'close', 'refused'],
    ['close() while Socket.IO retries an unreachable node', 'close', 'unreachable'],
  ])('%s', async (_name, action, when) => {
    if (when === 'refused') admit = () => 'registry_unavailable';
    const target = when === 'unreachable' ? await deadUrl() : url;
    const script = `
      import { connect } from ${JSON.stringify(new URL('../../packages/device/src/index.ts', import.meta.url).href)};
      import { signToken } from ${JSON.stringify(new URL('../support/tokens.ts', import.meta.url).href)};
      const client = connect({ url: ${JSON.stringify(target)}, clientType: 'web', token: () => signToken('u', { expiresIn: 3600 }),
        reconnect: { reconnectionDelay: 5000 }, socketOptions: { transports: ['websocket'] } });
      const act = () => { console.log('${when}'); if ('${action}' === 'close') client.close(); };
      client.onStatus((s) => s.type === 'connected' && setTimeout(act, 200));
      client.onError((e) => e.code === 'connect_refused' && setTimeout(act, 200));
      if ('${when}' === 'unreachable') setTimeout(act, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module'], { stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdin.end(script);
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor(`the child to be ${when}`, () => stdout.includes(when), { timeoutMs: 10_000 });
    const ended = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 1500))]);
    child.kill();
    expect(ended).toBe(action === 'close' ? 0 : 'still running');
  });
});

/** The address of a port nothing listens on. */
async function deadUrl(): Promise<string> {
  const http = createServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  await new Promise((resolve) => http.close(resolve));
  return `http://127.0.0.1:${port}`;
}
