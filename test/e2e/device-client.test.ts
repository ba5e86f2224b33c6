import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  connect,
  type DeviceClient,
  type DeviceError,
  type DeviceOptions,
  type DeviceStatus,
  type Meta,
} from '../../packages/device/src/index.js';
import { DeliveryMode } from '../../src/gen/pushgate/v1/inbox.js';
import {
  DeliveryStatus,
  ListInboxRequest,
  type ListInboxResponse,
  type PushToUserResponse,
} from '../../src/gen/pushgate/v1/push_service.js';
import { launchChromium } from '../support/chromium.js';
import { startNode, type TestNode } from '../support/node.js';
import { signToken } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

/**
 * The device package (packages/device) against a real pushgate node: acks from handler results,
 * no ack when a handler fails, tokens fetched at each connect and refreshed before exp, the node's
 * disconnect notices, and (with the node's meta opt-in) meta, offline-inbox replay and de-duplication.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Events extends Record<string, unknown> {
  notice: { n: number };
}

let node: TestNode;
const devices: DeviceClient<Events>[] = [];

beforeEach(async () => {
  node = await startNode();
});
afterEach(async () => {
  for (const device of devices.splice(0)) device.close();
  await node.stop();
});

/** A device of `userId`, with short backoffs; resolves once connected. */
async function device(userId: string, options: Partial<DeviceOptions> = {}): Promise<DeviceClient<Events>> {
  const client = open(userId, options);
  await waitFor(`${userId} to connect`, () => client.connected);
  return client;
}

function open(userId: string, options: Partial<DeviceOptions> = {}): DeviceClient<Events> {
  const client = connect<Events>({
    url: node.httpUrl,
    token: () => signToken(userId),
    clientType: 'app',
    reconnect: { reconnectionDelay: 50, reconnectionDelayMax: 200 },
    socketOptions: { transports: ['websocket'] },
    ...options,
  });
  devices.push(client);
  return client;
}

/** Drops the device's connection on the node's side, as a network failure would. */
function dropConnection(client: DeviceClient<Events>): void {
  node.app.local.get(client.sessionId!)!.socket.conn.close();
}

async function listInbox(userId: string): Promise<ListInboxResponse> {
  return new Promise((resolve, reject) =>
    node.client.raw.listInbox(
      ListInboxRequest.fromPartial({ userId }),
      new Metadata(),
      (err: ServiceError | null, res: ListInboxResponse) => (err ? reject(err) : resolve(res)),
    ),
  );
}

describe('device client: acks', () => {
  it('acks with the value the handler returns', async () => {
    const client = await device('d1');
    client.on('notice', async (data) => ({ seen: data.n }));
    const response = await node.client.pushToUser({ userId: 'd1', event: 'notice', data: { n: 7 } });
    expect(response.deliveries.map((d) => [d.status, d.ackData])).toEqual([[DeliveryStatus.DELIVERY_STATUS_ACKED, { seen: 7 }]]);
    expect(response.deliveries[0]!.session!.sessionId).toBe(client.sessionId);
  });

  it('connects with Socket.IO’s default transports (polling, then websocket) too', async () => {
    const client = await device('d1b', { socketOptions: {} });
    client.on('notice', () => 'ok');
    const response = await node.client.pushToUser({ userId: 'd1b', event: 'notice', data: { n: 1 } });
    expect(response.deliveries.map((d) => d.ackData)).toEqual(['ok']);
  });

  it('does not ack when the handler throws, and reports it', async () => {
    const client = await device('d2');
    const errors: DeviceError[] = [];
    client.onError((err) => errors.push(err));
    client.on('notice', () => {
      throw new Error('cannot show it');
    });
    const response = await node.client.pushToUser({ userId: 'd2', event: 'notice', data: { n: 1 }, ackTimeoutMs: 300 });
    expect(response.deliveries.map((d) => d.status)).toEqual([DeliveryStatus.DELIVERY_STATUS_TIMEOUT]);
    expect(errors.map((e) => [e.code, e.details.event, e.message])).toEqual([
      ['handler_failed', 'notice', 'the "notice" handler failed: cannot show it'],
    ]);
  });
});

describe('device client: connections', () => {
  it('fetches a fresh token at each reconnect, and comes back as a new session', async () => {
    let calls = 0;
    const client = await device('d3', {
      token: () => {
        calls++;
        return signToken('d3');
      },
    });
    const statuses: DeviceStatus[] = [];
    client.onStatus((s) => statuses.push(s));
    const before = client.sessionId;
    dropConnection(client);
    await waitFor('a new session', () => client.connected && client.sessionId !== before);
    expect(calls).toBe(2);
    expect(statuses.map((s) => s.type)).toEqual(['disconnected', 'connected']);
    expect(statuses[0]).toEqual({ type: 'disconnected', reason: 'transport close', willReconnect: true });
    const listed = await node.client.listSessions({ userId: 'd3' });
    expect(listed.sessions.map((s) => s.sessionId)).toEqual([client.sessionId]);
  });

  it('stays closed when kicked, with the reason DisconnectSessions gave', async () => {
    const kicked = await device('d4');
    const evicted = await device('d4b');
    const closed: string[] = [];
    kicked.onClose((reason) => closed.push(`d4 ${reason}`));
    evicted.onClose((reason) => closed.push(`d4b ${reason}`));
    await node.client.disconnectSessions({ userId: 'd4' });
    await node.client.disconnectSessions({ userId: 'd4b', reason: 'password changed' });
    await waitFor('both closed', () => closed.length === 2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(closed.sort()).toEqual(['d4 kicked', 'd4b password changed']);
    expect((await node.client.listSessions({ userId: 'd4' })).sessions).toEqual([]);
    expect((await node.client.listSessions({ userId: 'd4b' })).sessions).toEqual([]);
  });

  it('stops at once when the node refuses its token', async () => {
    const client = open('d5', { token: await signToken('d5', { secret: 'another-secret-that-is-at-least-32-characters' }) });
    const closed: string[] = [];
    client.onClose((reason) => closed.push(reason));
    await waitFor('the close', () => closed.length === 1);
    expect(closed).toEqual(['token_signature_invalid']);
  });

  it('refreshes its token before exp and keeps its session past the first token’s exp', async () => {
    const refreshed: string[] = [];
    const client = await device('d6', {
      token: async () => {
        refreshed.push(new Date().toISOString());
        return signToken('d6', { expiresIn: 3 });
      },
      refreshBeforeExpiryMs: 2000,
    });
    const errors: DeviceError[] = [];
    client.onError((err) => errors.push(err));
    const session = client.sessionId;
    await new Promise((resolve) => setTimeout(resolve, 3500));
    expect(client.sessionId).toBe(session);
    expect(refreshed.length).toBeGreaterThanOrEqual(3);
    expect(errors).toEqual([]);
  });

  it('with a fixed token, closes with token_expired when the node ends the session at exp', async () => {
    const client = await device('d7', { token: await signToken('d7', { expiresIn: 2 }) });
    const closed: string[] = [];
    client.onClose((reason) => closed.push(reason));
    await waitFor('the close', () => closed.length === 1, { timeoutMs: 5000 });
    expect(closed).toEqual(['token_expired']);
  });

  it('with a token function, reconnects when the node ends the session at exp', async () => {
    let calls = 0;
    // refreshBeforeExpiryMs 0: no refresh, so the node ends the session at the first token's exp (2 s).
    const client = await device('d8', { token: () => signToken('d8', { expiresIn: ++calls === 1 ? 2 : 3600 }), refreshBeforeExpiryMs: 0 });
    const statuses: DeviceStatus[] = [];
    client.onStatus((s) => statuses.push(s));
    await waitFor('a reconnect', () => statuses.length === 2, { timeoutMs: 6000 });
    expect(statuses[0]).toEqual({ type: 'disconnected', reason: 'token_expired', willReconnect: true });
    expect(statuses[1]!.type).toBe('connected');
    expect(calls).toBe(2);
  });

  it('reconnects after the node shuts down and comes back on the same port', async () => {
    const client = await device('d9');
    const statuses: DeviceStatus[] = [];
    client.onStatus((s) => statuses.push(s));
    const port = new URL(node.httpUrl).port;
    await node.stop();
    node = await startNode({ PUSHGATE_HTTP_PORT: port });
    await waitFor('the reconnect', () => statuses.some((s) => s.type === 'connected'), { timeoutMs: 8000 });
    expect(statuses[0]).toEqual({ type: 'disconnected', reason: 'server_shutdown', willReconnect: true });
    client.on('notice', () => 'back');
    const response = await node.client.pushToUser({ userId: 'd9', event: 'notice', data: { n: 1 } });
    expect(response.deliveries.map((d) => d.ackData)).toEqual(['back']);
  });

  it('close() leaves nothing that keeps a Node process alive', async () => {
    const script = `
      import { connect } from ${JSON.stringify(new URL('../../packages/device/src/index.ts', import.meta.url).href)};
      import { signToken } from ${JSON.stringify(new URL('../support/tokens.ts', import.meta.url).href)};
      const client = connect({ url: ${JSON.stringify(node.httpUrl)}, clientType: 'app', token: () => signToken('d10', { expiresIn: 600 }) });
      client.on('notice', (data) => { console.log('got', data.n); setTimeout(() => client.close(), 100); return 'bye'; });
      client.onStatus((s) => console.log(s.type));
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module'], { stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdin.end(script);
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor('the child to connect', () => stdout.includes('connected'), { timeoutMs: 10_000 });
      const response = await node.client.pushToUser({ userId: 'd10', event: 'notice', data: { n: 5 } });
      expect(response.deliveries.map((d) => d.ackData)).toEqual(['bye']);
      const ended = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 2000))]);
      expect(ended).toBe(0);
      expect(stdout).toContain('got 5');
    } finally {
      child.kill();
    }
  });
});

// These need the node's meta opt-in (auth.meta) and its offline inbox.
describe('device client: meta, replay and de-duplication', () => {
  it('hands the handler the push’s meta', async () => {
    const client = await device('m1');
    const metas: Meta[] = [];
    client.on('notice', (_data, meta) => void metas.push(meta));
    const before = Date.now();
    const response = await node.client.pushToUser({ userId: 'm1', event: 'notice', data: { n: 1 } });
    expect(response.acked).toBe(1);
    expect(metas).toEqual([{ messageId: response.messageId, sentAt: expect.any(Number), replay: false, attempt: 1 }]);
    expect(metas[0]!.sentAt).toBeGreaterThanOrEqual(before - 5);
    expect(metas[0]!.sentAt).toBeLessThanOrEqual(Date.now());
  });

  it('replays stored pushes on connect, in push order and before live ones; acked, they leave the inbox', async () => {
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      const response = await node.client.pushToUser({
        userId: 'm2',
        event: 'notice',
        data: { n },
        deliveryMode: DeliveryMode.DELIVERY_MODE_STORE_IF_UNACKED,
      });
      expect(response.stored).toBe(true);
      ids.push(response.messageId);
    }
    const client = open('m2');
    const seen: [number, Meta][] = [];
    client.on('notice', (data, meta) => {
      seen.push([data.n, meta]);
      return 'ok';
    });
    // A live push as soon as the device is connected still comes after the replay.
    const pushed = new Promise<PushToUserResponse>((resolve) =>
      client.onStatus(() => resolve(node.client.pushToUser({ userId: 'm2', event: 'notice', data: { n: 4 } }))),
    );
    const live = await pushed;
    expect(live.acked).toBe(1);
    expect(seen.map(([n, meta]) => [n, meta.messageId, meta.replay, meta.attempt])).toEqual([
      [1, ids[0], true, 1],
      [2, ids[1], true, 1],
      [3, ids[2], true, 1],
      [4, live.messageId, false, 1],
    ]);
    expect(client.stats).toMatchObject({ replayed: 3, handled: 4, duplicates: 0 });
    await waitFor('an empty inbox', async () => (await listInbox('m2')).messages.length === 0);
  });

  it('a handler that failed on replay gets the message again on the next connection', async () => {
    const push = await node.client.pushToUser({
      userId: 'm3',
      event: 'notice',
      data: { n: 1 },
      deliveryMode: DeliveryMode.DELIVERY_MODE_STORE_IF_UNACKED,
    });
    const attempts: number[] = [];
    const client = open('m3');
    client.on('notice', (_data, meta) => {
      attempts.push(meta.attempt);
      if (attempts.length === 1) throw new Error('not yet');
      return 'ok';
    });
    await waitFor('the first replay', () => attempts.length === 1);
    expect((await listInbox('m3')).messages.map((m) => m.messageId)).toEqual([push.messageId]);
    dropConnection(client);
    await waitFor('the second replay', () => attempts.length === 2);
    expect(attempts).toEqual([1, 2]);
    await waitFor('an empty inbox', async () => (await listInbox('m3')).messages.length === 0);
  });

  it('a message replayed while its handler still runs (its connection dropped) runs once, and is acked on the new connection', async () => {
    await node.client.pushToUser({
      userId: 'm4',
      event: 'notice',
      data: { n: 1 },
      deliveryMode: DeliveryMode.DELIVERY_MODE_STORE_IF_UNACKED,
    });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const metas: Meta[] = [];
    const client = open('m4');
    client.on('notice', async (_data, meta) => {
      metas.push(meta);
      await held;
      return 'done';
    });
    await waitFor('the first replay', () => metas.length === 1);
    dropConnection(client);
    await waitFor('the second delivery', () => client.stats.duplicates === 1);
    release();
    await waitFor('an empty inbox', async () => (await listInbox('m4')).messages.length === 0);
    expect(metas).toHaveLength(1);
    expect(client.stats).toMatchObject({ handled: 1, duplicates: 1, replayed: 2 });
  });
});

describe('device client in a browser, without a bundler', () => {
  // Served by the node itself: Socket.IO's client at /socket.io/socket.io.js and the package's
  // dist/core.js at /device.js; only this page is the test's own.
  const PAGE = `<!doctype html>
<script src="/socket.io/socket.io.js"></script>
<script type="module">
  import { connect } from '/device.js';
  window.start = (token) => {
    window.device = connect({ url: location.origin, token: async () => token, clientType: 'web' });
    window.device.on('notice', async (data, meta) => ({ seen: data.n, messageId: meta.messageId, replay: meta.replay }));
  };
</script>`;

  // Built before this block's node starts, in case the node reads the file once at start.
  beforeAll(async () => {
    await promisify(execFile)('npm', ['run', 'build', '--workspace', '@pushgate/device'], { cwd: ROOT, timeout: 60_000 });
  }, 60_000);

  it('connects from a page with the global io, and acks with the handler’s value', async () => {
    const served = await fetch(`${node.httpUrl}/device.js`);
    expect(served.status, 'the node serves packages/device/dist/core.js at /device.js').toBe(200);
    expect(served.headers.get('content-type')).toMatch(/javascript/);
    const browser = await launchChromium(5000);
    try {
      const page = await browser.context.newPage();
      await page.route(`${node.httpUrl}/device-test.html`, (route) => route.fulfill({ contentType: 'text/html', body: PAGE }));
      await page.goto(`${node.httpUrl}/device-test.html`);
      await page.waitForFunction(() => typeof (globalThis as unknown as { start?: unknown }).start === 'function');
      await page.evaluate((token) => (globalThis as unknown as { start(token: string): void }).start(token), await signToken('b1'));
      await page.waitForFunction(() => (globalThis as unknown as { device: { connected: boolean } }).device.connected);
      const response = await node.client.pushToUser({ userId: 'b1', event: 'notice', data: { n: 3 } });
      expect(response.deliveries.map((d) => [d.session?.clientType, d.ackData])).toEqual([
        ['web', { seen: 3, messageId: response.messageId, replay: false }],
      ]);
    } finally {
      await browser.close();
    }
  });
});
