import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startNode, type TestNode } from '../support/node.js';
import { startRedis } from '../support/redis-server.js';

/**
 * The dashboard's JSON API and POST /dev/push without a browser: a real node, real Socket.IO
 * clients that ack, plain fetch. What the page does is in test/browser/dashboard.test.ts.
 */

const ADMIN_KEY = 'admin-key-0123456789abcdefghij';
const PUSH_KEY = 'push-key-0123456789abcdefghijk';

let open: TestNode | undefined;
const nodes: TestNode[] = [];

beforeAll(async () => {
  open = await startNode({ PUSHGATE_DASHBOARD: '1' });
});

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((node) => node.stop()));
});

afterAll(async () => {
  await open?.stop();
});

function node(): TestNode {
  if (open === undefined) throw new Error('the node did not start');
  return open;
}

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown> & { error?: { code: string; message: string } };
}

async function call(
  base: TestNode,
  path: string,
  init: { body?: unknown; key?: string; type?: string; raw?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (init.key !== undefined) headers.authorization = `Bearer ${init.key}`;
  const post = init.body !== undefined || init.raw !== undefined;
  if (post) headers['content-type'] = init.type ?? 'application/json';
  const res = await fetch(`${base.httpUrl}${path}`, {
    method: post ? 'POST' : 'GET',
    headers,
    ...(post && { body: init.raw ?? JSON.stringify(init.body) }),
  });
  return { status: res.status, body: (await res.json()) as Answer['body'] };
}

/** Connects `count` clients of one user that ack `notice` with their index. */
async function connectAcking(base: TestNode, userId: string, types: readonly string[]): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (const [i, type] of types.entries()) {
    const socket = await base.connect(userId, type);
    socket.on('notice', (_data: unknown, ack?: (reply: unknown) => void) => ack?.({ by: i }));
    sockets.push(socket);
  }
  return sockets;
}

describe('dashboard API, no API keys (loopback)', () => {
  it('counts sessions per node and client type, lists a user’s sessions in pages, pushes with per-session results, kicks one', async () => {
    const n = node();
    const nodeId = n.app.config.server.nodeId;
    await connectAcking(n, 'dash-1', ['app', 'web', 'web']);
    await connectAcking(n, 'dash-2', ['pc']);

    const overview = await call(n, '/dashboard/api/overview');
    expect(overview.status).toBe(200);
    expect(overview.body).toMatchObject({
      nodeId,
      nodes: [{ id: nodeId, live: true, sessions: 4 }],
      census: { sessions: 4, usersOnline: 2, byNode: { [nodeId]: { app: 1, web: 2, pc: 1 } }, capped: false, pagesRead: 1 },
    });

    const first = await call(n, '/dashboard/api/sessions?user=dash-1&pageSize=2');
    expect(first.status).toBe(200);
    const firstSessions = first.body.sessions as { sessionId: string; clientType: string }[];
    expect(firstSessions.map((s) => s.clientType)).toEqual(['app', 'web']);
    expect(first.body.nextPageToken).not.toBe('');
    const second = await call(n, `/dashboard/api/sessions?user=dash-1&pageSize=2&pageToken=${first.body.nextPageToken as string}`);
    const all = [...firstSessions, ...(second.body.sessions as { sessionId: string; clientType: string }[])];
    expect(all).toHaveLength(3);
    expect(new Set(all.map((s) => s.sessionId)).size).toBe(3);
    expect(second.body.nextPageToken).toBe('');
    const stolen = await call(n, `/dashboard/api/sessions?user=dash-2&pageToken=${first.body.nextPageToken as string}`);
    expect(stolen).toMatchObject({ status: 400, body: { error: { code: 'invalid_argument' } } });
    expect(stolen.body.error?.message).toContain('page_token belongs to another listing');

    const pushed = await call(n, '/dashboard/api/push', { body: { user: 'dash-1', event: 'notice', data: { n: 1 } } });
    expect(pushed.status).toBe(200);
    expect(pushed.body).toMatchObject({ acked: 3, timedOut: 0, failed: 0 });
    const deliveries = pushed.body.deliveries as { session: { sessionId: string }; status: string; ackData: unknown }[];
    expect(deliveries.map((d) => [d.session.sessionId, d.status, d.ackData])).toEqual(all.map((s, i) => [s.sessionId, 'acked', { by: i }]));

    const kicked = await call(n, '/dashboard/api/kick', { body: { user: 'dash-1', sessionId: all[1]!.sessionId } });
    expect(kicked.status).toBe(200);
    expect((kicked.body.disconnected as { sessionId: string }[]).map((s) => s.sessionId)).toEqual([all[1]!.sessionId]);
    const after = await call(n, '/dashboard/api/sessions?user=dash-1');
    expect((after.body.sessions as { sessionId: string }[]).map((s) => s.sessionId)).toEqual([all[0]!.sessionId, all[2]!.sessionId]);
  });

  it('lists the presence events since the page asked first, and rates and ack latency from the metrics', async () => {
    const n = node();
    const start = await call(n, '/dashboard/api/events?after=0');
    expect(start).toMatchObject({ status: 200, body: { live: true } });
    expect(n.app.dashboard?.watching).toBe(true);
    const [socket] = await connectAcking(n, 'dash-3', ['app']);
    await expect
      .poll(async () =>
        ((await call(n, `/dashboard/api/events?after=${start.body.latest as number}`)).body.events as { kind: string }[]).map(
          (e) => e.kind,
        ),
      )
      .toEqual(['user_online', 'session_connected']);
    socket!.close();
    await expect
      .poll(async () =>
        ((await call(n, `/dashboard/api/events?after=${start.body.latest as number}`)).body.events as { kind: string }[]).map(
          (e) => e.kind,
        ),
      )
      .toEqual(['user_online', 'session_connected', 'session_disconnected', 'user_offline']);

    await connectAcking(n, 'dash-4', ['app', 'pc']);
    await call(n, '/dashboard/api/overview');
    for (let i = 0; i < 5; i++)
      expect((await call(n, '/dashboard/api/push', { body: { user: 'dash-4', event: 'notice' } })).body.acked).toBe(2);
    await call(n, '/dashboard/api/push', { body: { user: 'nobody-here', event: 'notice' } });
    // The sampler takes at most one sample a second: the rates need two.
    await expect
      .poll(async () => (await call(n, '/dashboard/api/overview')).body.metrics, { timeout: 5000, interval: 250 })
      .toMatchObject({ pushesPerSecond: { all_acked: expect.any(Number), no_sessions: expect.any(Number) } });
    const { metrics } = (await call(n, '/dashboard/api/overview')).body as {
      metrics: { pushesPerSecond: Record<string, number>; ackLatency: { p50: number; p95: number; p99: number; count: number } };
    };
    expect(metrics.pushesPerSecond.all_acked).toBeGreaterThan(0);
    expect(metrics.ackLatency.count).toBeGreaterThanOrEqual(10);
    expect(metrics.ackLatency.p50).toBeGreaterThan(0);
    expect(metrics.ackLatency.p50).toBeLessThanOrEqual(metrics.ackLatency.p99);
    expect(metrics.ackLatency.p99).toBeLessThan(1);
  });

  it('refuses bad requests with a code and a message naming the field', async () => {
    const n = node();
    const refusals: [string, Parameters<typeof call>[2], number, string, string][] = [
      ['/dashboard/api/push', { body: { event: 'notice' } }, 400, 'invalid_argument', 'user is required'],
      ['/dashboard/api/push', { body: { user: 'u', event: 'connect' } }, 400, 'invalid_argument', 'event "connect" is reserved'],
      ['/dashboard/api/push', { body: { user: 'u', event: 'pushgate:x' } }, 400, 'invalid_argument', 'reserved'],
      ['/dashboard/api/push', { body: { user: 'u' } }, 400, 'invalid_argument', 'event is required'],
      ['/dashboard/api/push', { body: { user: 'u', event: 'e', clientTypes: ['tv'] } }, 400, 'invalid_argument', 'clientTypes[0] "tv"'],
      [
        '/dashboard/api/push',
        { body: { user: 'u', event: 'e', ackTimeoutMs: 10_000_000 } },
        400,
        'invalid_argument',
        'ackTimeoutMs must be at most',
      ],
      ['/dashboard/api/push', { body: { user: 'u', event: 'e', noAck: 'yes' } }, 400, 'invalid_argument', 'noAck'],
      [
        '/dashboard/api/push',
        { body: { user: 'u', event: 'e', data: 'x'.repeat(270_000) } },
        413,
        'payload_too_large',
        'PUSHGATE_MAX_PAYLOAD_BYTES',
      ],
      [
        '/dashboard/api/push',
        { body: { user: 'u', event: 'e', data: JSON.parse(`${'['.repeat(40)}${']'.repeat(40)}`) } },
        400,
        'invalid_argument',
        'PUSHGATE_MAX_DATA_DEPTH',
      ],
      [
        '/dashboard/api/push',
        { raw: `{"user":"u","event":"e","data":"${'y'.repeat(300_000)}"}` },
        413,
        'payload_too_large',
        'the body is over',
      ],
      ['/dashboard/api/push', { raw: '{"user":' }, 400, 'invalid_argument', 'not valid JSON'],
      [
        '/dashboard/api/push',
        { raw: '{"user":"u","event":"e"}', type: 'text/plain' },
        400,
        'invalid_argument',
        'content-type application/json',
      ],
      ['/dashboard/api/push', {}, 405, 'method_not_allowed', 'GET'],
      ['/dashboard/api/kick', { body: { user: '' } }, 400, 'invalid_argument', 'user is required'],
      ['/dashboard/api/kick', { body: { user: 'u', sessionId: 7 } }, 400, 'invalid_argument', 'sessionId must be a string'],
      ['/dashboard/api/sessions', {}, 400, 'invalid_argument', 'user is required'],
      ['/dashboard/api/sessions?user=u&pageSize=-1', {}, 400, 'invalid_argument', 'pageSize'],
      ['/dashboard/api/sessions?user=u&pageToken=garbage', {}, 400, 'invalid_argument', 'page_token'],
      ['/dashboard/api/events?after=x', {}, 400, 'invalid_argument', 'after'],
      ['/dashboard/api/nothing', {}, 404, 'not_found', '/dashboard/api/nothing'],
      ['/dashboard/assets/secret.js', {}, 404, 'not_found', 'secret.js'],
    ];
    for (const [path, init, status, code, message] of refusals) {
      const answer = await call(n, path, init);
      expect({ path, status: answer.status, code: answer.body.error?.code }).toEqual({ path, status, code });
      expect(answer.body.error?.message).toContain(message);
    }
  });

  it('serves the page and uPlot from the package', async () => {
    const n = node();
    const page = await fetch(`${n.httpUrl}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toContain('<title>pushgate dashboard</title>');
    const script = await fetch(`${n.httpUrl}/dashboard/assets/uPlot.iife.min.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toContain('text/javascript');
    expect(await script.text()).toContain('uPlot');
    expect((await fetch(`${n.httpUrl}/dashboard/assets/uPlot.min.css`)).headers.get('content-type')).toContain('text/css');
  });
});

describe('dashboard off, and with API keys', () => {
  it('is 404 everywhere when not enabled, even in development mode', async () => {
    const n = await startNode({ PUSHGATE_DEV: '1' });
    nodes.push(n);
    expect(n.app.dashboard).toBeUndefined();
    for (const path of ['/dashboard', '/dashboard/api/overview', '/dashboard/assets/uPlot.iife.min.js']) {
      expect({ path, answer: await call(n, path) }).toMatchObject({
        path,
        answer: { status: 404, body: { error: { code: 'not_found' } } },
      });
    }
  });

  it('asks for an admin key: none or a wrong one is 401, a push-only key 403, an admin key works', async () => {
    const n = await startNode({
      PUSHGATE_DASHBOARD: '1',
      PUSHGATE_API_KEYS: `ops:admin:${ADMIN_KEY};backend:push:${PUSH_KEY}`,
    });
    nodes.push(n);
    // The page itself holds no data: it loads, then asks for a key.
    expect((await fetch(`${n.httpUrl}/dashboard`)).status).toBe(200);
    for (const path of ['/dashboard/api/overview', '/dashboard/api/events', '/dashboard/api/sessions?user=u']) {
      expect(await call(n, path)).toMatchObject({ status: 401, body: { error: { code: 'unauthenticated' } } });
    }
    expect(await call(n, '/dashboard/api/push', { body: { user: 'u', event: 'e' } })).toMatchObject({ status: 401 });
    expect(await call(n, '/dashboard/api/overview', { key: 'not-a-key-at-all-000000000000' })).toMatchObject({
      status: 401,
      body: { error: { code: 'unauthenticated', message: 'the API key is not valid' } },
    });
    const pushOnly = await call(n, '/dashboard/api/kick', { key: PUSH_KEY, body: { user: 'u' } });
    expect(pushOnly).toMatchObject({ status: 403, body: { error: { code: 'permission_denied' } } });
    expect(pushOnly.body.error?.message).toContain('"backend" lacks the admin scope');
    expect(await call(n, '/dashboard/api/overview', { key: ADMIN_KEY })).toMatchObject({ status: 200, body: { census: { sessions: 0 } } });
    expect(await call(n, '/dashboard/api/push', { key: ADMIN_KEY, body: { user: 'u', event: 'e' } })).toMatchObject({
      status: 200,
      body: { deliveries: [] },
    });
  });
});

describe('POST /dev/push', () => {
  it('pushes to the user in development mode, with per-session results', async () => {
    const n = await startNode({ PUSHGATE_DEV: '1' });
    nodes.push(n);
    await connectAcking(n, 'dev-1', ['web', 'app']);
    const answer = await call(n, '/dev/push', { body: { user: 'dev-1', event: 'notice', data: { text: 'hi' } } });
    expect(answer).toMatchObject({ status: 200, body: { acked: 2, deliveries: [{ status: 'acked' }, { status: 'acked' }] } });
    expect(await call(n, '/dev/push', { body: { user: 'dev-1', event: 'disconnect' } })).toMatchObject({
      status: 400,
      body: { error: { code: 'invalid_argument' } },
    });
    expect(await call(n, '/dev/push')).toMatchObject({ status: 405, body: { error: { code: 'method_not_allowed' } } });
  });

  it('is refused outside development mode, before reading anything', async () => {
    const n = node();
    await connectAcking(n, 'dev-2', ['web']);
    let received = 0;
    const [socket] = await connectAcking(n, 'dev-2', ['app']);
    socket!.on('notice', () => received++);
    const answer = await call(n, '/dev/push', { body: { user: 'dev-2', event: 'notice' } });
    expect(answer).toMatchObject({ status: 403, body: { error: { code: 'dev_mode_disabled' } } });
    expect(answer.body.error?.message).toContain('PUSHGATE_DEV');
    expect(received).toBe(0);
  });
});

describe('dashboard API, cluster mode', () => {
  it('lists the lease holders with their sessions, pushes to and kicks sessions held by another node', async () => {
    const redis = await startRedis();
    try {
      const env = { REDIS_URL: redis.url, PUSHGATE_DASHBOARD: '1' };
      const a = await startNode({ ...env, PUSHGATE_NODE_ID: 'dash-a' });
      nodes.push(a);
      const b = await startNode({ ...env, PUSHGATE_NODE_ID: 'dash-b' });
      nodes.push(b);
      await connectAcking(a, 'dash-c', ['app']);
      await connectAcking(b, 'dash-c', ['web', 'pc']);

      await expect
        .poll(async () => (await call(a, '/dashboard/api/overview')).body, { timeout: 5000, interval: 100 })
        .toMatchObject({
          nodes: [
            { id: 'dash-a', live: true, sessions: 1 },
            { id: 'dash-b', live: true, sessions: 2 },
          ],
          census: { sessions: 3, usersOnline: 1, byNode: { 'dash-a': { app: 1 }, 'dash-b': { web: 1, pc: 1 } } },
        });
      const pushed = await call(a, '/dashboard/api/push', { body: { user: 'dash-c', event: 'notice' } });
      expect(pushed.body).toMatchObject({ acked: 3, failed: 0 });
      const onB = (pushed.body.deliveries as { session: { sessionId: string; nodeId: string } }[]).find(
        (d) => d.session.nodeId === 'dash-b',
      )!;
      const kicked = await call(a, '/dashboard/api/kick', { body: { user: 'dash-c', sessionId: onB.session.sessionId } });
      expect((kicked.body.disconnected as { sessionId: string }[]).map((s) => s.sessionId)).toEqual([onB.session.sessionId]);

      // A node that leaves gives its lease up and its sessions go with it.
      await b.stop();
      await expect
        .poll(async () => (await call(a, '/dashboard/api/overview')).body.nodes, { timeout: 5000, interval: 100 })
        .toEqual([{ id: 'dash-a', live: true, sessions: 1 }]);
    } finally {
      await Promise.all(nodes.splice(0).map((node) => node.stop()));
      await redis.stop();
    }
  });
});
