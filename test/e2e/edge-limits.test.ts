import { Writable } from 'node:stream';
import type { Socket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryStatus, PushToUserResponse } from '../../src/gen/pushgate/v1/push_service.js';
import { createLogger } from '../../src/logger.js';
import { heldBytes, MiB } from '../support/memory.js';
import { startNode, type TestNode } from '../support/node.js';
import { DISCONNECTED, eventsOf, presenceStreams } from '../support/presence-watch.js';
import { rawWebSocket } from '../support/raw-engine.js';
import { connectClient, connectError, openClient } from '../support/socket-client.js';
import { signToken } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

/** Limits of the Socket.IO edge, each against a real node and real clients (issue 9). */

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
const { watchLive } = presenceStreams(cleanups);

async function node(env: Record<string, string> = {}, logger?: Parameters<typeof startNode>[1]): Promise<TestNode> {
  const started = await startNode(env, logger);
  cleanups.push(() => started.stop());
  return started;
}

/** A client connected with extra handshake headers (X-Forwarded-For, Origin), closed after the test. */
async function connectWith(n: TestNode, userId: string, headers: Record<string, string>): Promise<Socket> {
  const socket = await connectClient(n.httpUrl, { token: await signToken(userId), clientType: 'web', headers });
  cleanups.push(() => socket.close());
  return socket;
}

function logSink(): { lines: Record<string, unknown>[]; stream: Writable } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { lines, stream };
}

describe('ack bounds', () => {
  it('fails only the delivery whose ack is binary, too large or too deep; the rest of the push is reported', async () => {
    const n = await node();
    const deep: Record<string, unknown> = {};
    let level = deep;
    for (let i = 0; i < 50; i++) level = level.next = {} as Record<string, unknown>;
    // 32 levels, the default limit: still a reply every protobuf parser decodes (100 message levels).
    const deepest: Record<string, unknown> = {};
    level = deepest;
    for (let i = 1; i < 32; i++) level = level.next = {} as Record<string, unknown>;
    const answers: [string, unknown][] = [
      ['fine', { ok: true }],
      ['deepest', deepest],
      ['binary', Buffer.alloc(900_000, 1)],
      ['deep', deep],
      ['large', { text: 'y'.repeat(100_000) }],
    ];
    const sessions = new Map<string, string>();
    for (const [name, answer] of answers) {
      const socket = await n.connect('acker', 'web');
      socket.on('ask', (_data: unknown, ack: (reply: unknown) => void) => ack(answer));
      sessions.set(socket.id!, name);
    }
    const response = await n.client.pushToUser({ userId: 'acker', event: 'ask', data: {}, ackTimeoutMs: 5000 });
    const byName = Object.fromEntries(response.deliveries.map((d) => [sessions.get(d.session!.sessionId), d]));
    expect(byName.fine).toMatchObject({ status: DeliveryStatus.DELIVERY_STATUS_ACKED, ackData: { ok: true } });
    expect(byName.binary).toMatchObject({ status: DeliveryStatus.DELIVERY_STATUS_FAILED, ackData: undefined });
    expect(byName.binary!.error).toMatch(/^ack_binary: /);
    expect(byName.deep!.status).toBe(DeliveryStatus.DELIVERY_STATUS_FAILED);
    expect(byName.deep!.error).toMatch(/^ack_too_deep: .*32/);
    expect(byName.large!.status).toBe(DeliveryStatus.DELIVERY_STATUS_FAILED);
    expect(byName.large!.error).toMatch(/^ack_too_large: .*16384/);
    expect(byName.deepest).toMatchObject({ status: DeliveryStatus.DELIVERY_STATUS_ACKED, ackData: deepest });
    expect(response).toMatchObject({ acked: 2, failed: 3 });
    // Before: the 900 KB binary ack alone made a 9.8 MB reply.
    expect(PushToUserResponse.encode(response).finish().length).toBeLessThan(16 * 1024);
  });

  it('takes an ack at the limits (PUSHGATE_MAX_ACK_BYTES, PUSHGATE_MAX_ACK_DEPTH) as it is', async () => {
    const n = await node({ PUSHGATE_MAX_ACK_DEPTH: '3', PUSHGATE_MAX_ACK_BYTES: '1024' });
    const socket = await n.connect('acker', 'web');
    const answers = [{ a: { b: ['three levels'] } }, { a: { b: [{}] } }, { text: 'z'.repeat(900) }, { text: 'z'.repeat(1100) }];
    let next = 0;
    socket.on('ask', (_data: unknown, ack: (reply: unknown) => void) => ack(answers[next++]));
    const results = [];
    for (let i = 0; i < answers.length; i++) {
      const [delivery] = (await n.client.pushToUser({ userId: 'acker', event: 'ask', data: {} })).deliveries;
      results.push([delivery!.status, delivery!.error.split(':')[0]]);
    }
    expect(results).toEqual([
      [DeliveryStatus.DELIVERY_STATUS_ACKED, ''],
      [DeliveryStatus.DELIVERY_STATUS_FAILED, 'ack_too_deep'],
      [DeliveryStatus.DELIVERY_STATUS_ACKED, ''],
      [DeliveryStatus.DELIVERY_STATUS_FAILED, 'ack_too_large'],
    ]);
  });
});

describe('sessions per user', () => {
  it('refuses a session over PUSHGATE_MAX_SESSIONS_PER_USER with too_many_sessions (policy refuse)', async () => {
    const n = await node({ PUSHGATE_MAX_SESSIONS_PER_USER: '3' });
    for (let i = 0; i < 3; i++) await n.connect('busy', 'app');
    expect(await connectError(n.httpUrl, { token: await signToken('busy'), clientType: 'app' })).toMatchObject({
      code: 'too_many_sessions',
      message: expect.stringContaining('PUSHGATE_MAX_SESSIONS_PER_USER'),
    });
    // Another user is not affected, and a freed slot can be taken again.
    await n.connect('other', 'app');
    expect((await n.client.listSessions({ userId: 'busy' })).sessions).toHaveLength(3);
  });

  it('caps sessions by default, far above what a real user opens', async () => {
    const n = await node();
    expect(n.app.config.edgeLimits.maxSessionsPerUser).toBe(64);
    const sockets = await Promise.all(Array.from({ length: 64 }, () => n.connect('many', 'app')));
    expect(sockets.every((s) => s.connected)).toBe(true);
    expect((await connectError(n.httpUrl, { token: await signToken('many'), clientType: 'app' })).code).toBe('too_many_sessions');
  });

  it('closes the oldest session with a too_many_sessions notice under evict_oldest', async () => {
    const n = await node({ PUSHGATE_MAX_SESSIONS_PER_USER: '2', PUSHGATE_SESSION_LIMIT_POLICY: 'evict_oldest' });
    const watch = await watchLive(n, { userIds: ['phone'] });
    const oldest = await n.connect('phone', 'app');
    const notices: unknown[] = [];
    oldest.on('pushgate:disconnect', (notice: unknown) => notices.push(notice));
    const second = await n.connect('phone', 'app');
    const oldestId = oldest.id;
    await n.connect('phone', 'web');
    await waitFor('the oldest session to be closed', () => !oldest.connected);
    expect(notices).toEqual([{ reason: 'too_many_sessions' }]);
    const rows = await eventsOf(watch, 5);
    expect(rows.find(([kind]) => kind === DISCONNECTED)).toEqual([DISCONNECTED, 'phone', oldestId, 'too_many_sessions', 1]);
    const listed = (await n.client.listSessions({ userId: 'phone' })).sessions.map((s) => s.sessionId);
    expect(listed).toHaveLength(2);
    expect(listed).toContain(second.id);
    expect(listed).not.toContain(oldestId);
  });
});

describe('memory after abuse', () => {
  // Each abuse below once took memory away from everyone; after it, the node is back within a
  // stated bound of its baseline.
  const BOUND = 24 * MiB;

  it('one user opening 1,000 sessions: 64 accepted, the rest refused, memory back near the baseline once they leave', async () => {
    const n = await node();
    await n.connect('warm-up', 'app');
    const before = heldBytes();
    const token = await signToken('flood');
    const attempts = await Promise.all(
      Array.from({ length: 1000 }, async (_, i) => {
        // 50 at a time: a flood, without exhausting this process's sockets.
        await new Promise((resolve) => setTimeout(resolve, Math.floor(i / 50) * 20));
        return connectClient(n.httpUrl, { token, clientType: 'app' }).then(
          (socket) => socket,
          (err: { data?: { code?: string } }) => err.data?.code ?? 'other',
        );
      }),
    );
    const accepted = attempts.filter((a): a is Socket => typeof a !== 'string');
    expect(accepted).toHaveLength(64);
    expect(new Set(attempts.filter((a) => typeof a === 'string'))).toEqual(new Set(['too_many_sessions']));
    for (const socket of accepted) socket.close();
    await waitFor('the sessions to leave', () => n.app.local.size === 1, { timeoutMs: 10_000 });
    const grown = heldBytes() - before;
    console.log(`[measured] 1,000 sessions of one user, 936 refused: held memory +${(grown / MiB).toFixed(1)} MiB after`);
    expect(grown).toBeLessThan(BOUND);
  }, 30_000);

  it('200 pushes answered with 900 KB binary acks: each refused, nothing kept', async () => {
    const n = await node();
    const socket = await n.connect('binary-acker', 'web');
    const blob = Buffer.alloc(900_000, 1);
    socket.on('ask', (_data: unknown, ack: (reply: unknown) => void) => ack({ blob }));
    await n.client.pushToUser({ userId: 'binary-acker', event: 'ask', data: {} });
    const before = heldBytes();
    for (let i = 0; i < 200; i++) {
      const [delivery] = (await n.client.pushToUser({ userId: 'binary-acker', event: 'ask', data: {} })).deliveries;
      expect(delivery!.error).toMatch(/^ack_binary: /);
    }
    const grown = heldBytes() - before;
    console.log(`[measured] 200 pushes with 900 KB binary acks: held memory +${(grown / MiB).toFixed(1)} MiB after`);
    expect(grown).toBeLessThan(BOUND);
  }, 30_000);
});

describe('per client address', () => {
  it('is off by default: many connections from one address are accepted', async () => {
    const n = await node({ PUSHGATE_MAX_SESSIONS_PER_USER: '0' });
    const sockets = await Promise.all(Array.from({ length: 40 }, (_, i) => n.connect(`u${i}`, 'app')));
    expect(sockets.every((s) => s.connected)).toBe(true);
  });

  it('refuses connections over PUSHGATE_MAX_CONNECTIONS_PER_IP with too_many_connections, and frees the slot on close', async () => {
    const { lines, stream } = logSink();
    const n = await node({ PUSHGATE_MAX_CONNECTIONS_PER_IP: '3' }, createLogger('info', stream));
    const sockets = [];
    for (let i = 0; i < 3; i++) sockets.push(await n.connect(`u${i}`, 'app'));
    expect(await connectError(n.httpUrl, { token: await signToken('u9'), clientType: 'app' })).toMatchObject({
      code: 'too_many_connections',
    });
    sockets[0]!.close();
    await waitFor('the closed connection to be uncounted', () => n.app.edge.addressLimits.openConnections('127.0.0.1') === 2);
    await n.connect('u9', 'app');
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'socket handshake refused', code: 'too_many_connections' }));
  });

  it('refuses connections that never authenticate past the cap at the HTTP level', async () => {
    const n = await node({ PUSHGATE_MAX_CONNECTIONS_PER_IP: '2' });
    const raws = [await rawWebSocket(n.httpUrl), await rawWebSocket(n.httpUrl)];
    for (const raw of raws) cleanups.push(() => raw.socket.destroy());
    expect(raws.map((r) => r.statusLine)).toEqual(['HTTP/1.1 101 Switching Protocols', 'HTTP/1.1 101 Switching Protocols']);
    const third = await rawWebSocket(n.httpUrl);
    cleanups.push(() => third.socket.destroy());
    expect(third.statusLine).toBe('HTTP/1.1 400 Bad Request');
  });

  it('refuses handshakes over PUSHGATE_MAX_HANDSHAKES_PER_IP_PER_S with rate_limited', async () => {
    const n = await node({ PUSHGATE_MAX_HANDSHAKES_PER_IP_PER_S: '5', PUSHGATE_MAX_SESSIONS_PER_USER: '0' });
    const outcomes = [];
    for (let i = 0; i < 8; i++) {
      outcomes.push(await connectError(n.httpUrl, { token: await signToken('u'), clientType: 'nope' }));
    }
    // The first five reach the token and client type checks; the rest are refused for their rate.
    expect(outcomes.map((o) => o.code)).toEqual([...Array(5).fill('client_type_invalid'), ...Array(3).fill('rate_limited')]);
    expect(outcomes.at(-1)!.message).toContain('PUSHGATE_MAX_HANDSHAKES_PER_IP_PER_S');
  });

  it('takes the client address from X-Forwarded-For only from PUSHGATE_TRUSTED_PROXIES, for limits and the stored session', async () => {
    const trusting = await node({ PUSHGATE_TRUSTED_PROXIES: '127.0.0.1', PUSHGATE_MAX_CONNECTIONS_PER_IP: '1' });
    await connectWith(trusting, 'alice', { 'x-forwarded-for': '203.0.113.7' });
    await connectWith(trusting, 'bob', { 'x-forwarded-for': '203.0.113.8' });
    const refused = openClient(trusting.httpUrl, {
      token: await signToken('carol'),
      clientType: 'web',
      headers: { 'x-forwarded-for': '203.0.113.7' },
    });
    cleanups.push(() => refused.close());
    const code = await new Promise((resolve) =>
      refused.once('connect_error', (err: Error & { data?: { code?: string } }) => resolve(err.data?.code)),
    );
    expect(code).toBe('too_many_connections');
    expect((await trusting.client.listSessions({ userId: 'alice' })).sessions[0]!.remoteAddress).toBe('203.0.113.7');

    // Without the setting, a client cannot choose its address by sending the header.
    const direct = await node();
    await connectWith(direct, 'mallory', { 'x-forwarded-for': '198.51.100.1' });
    expect((await direct.client.listSessions({ userId: 'mallory' })).sessions[0]!.remoteAddress).toBe('127.0.0.1');
  });
});

describe('handshake timeout', () => {
  it('drops a connection that opens but never sends the Socket.IO CONNECT, after PUSHGATE_HANDSHAKE_TIMEOUT_MS', async () => {
    const n = await node({ PUSHGATE_HANDSHAKE_TIMEOUT_MS: '300' });
    const startedAt = Date.now();
    const raw = await rawWebSocket(n.httpUrl);
    cleanups.push(() => raw.socket.destroy());
    expect(raw.statusLine).toBe('HTTP/1.1 101 Switching Protocols');
    expect(n.app.edge.io.engine.clientsCount).toBe(1);
    await raw.closed;
    const heldMs = Date.now() - startedAt;
    expect(heldMs).toBeGreaterThanOrEqual(250);
    expect(heldMs).toBeLessThan(2000);
    expect(n.app.edge.io.engine.clientsCount).toBe(0);
    // A client that does authenticate is not affected.
    const socket = await n.connect('prompt', 'app');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(socket.connected).toBe(true);
  });

  it('defaults to 10 s', async () => {
    expect((await node()).app.config.edgeLimits.handshakeTimeoutMs).toBe(10_000);
  });
});

describe('origin', () => {
  async function pollingStatus(n: TestNode, origin: string | undefined): Promise<{ status: number; allowOrigin: string | null }> {
    const res = await fetch(`${n.httpUrl}/socket.io/?EIO=4&transport=polling`, { headers: origin === undefined ? {} : { origin } });
    await res.text();
    return { status: res.status, allowOrigin: res.headers.get('access-control-allow-origin') };
  }

  it('in production with no allowlist, refuses other sites on polling and websocket alike, and logs it', async () => {
    const { lines, stream } = logSink();
    const n = await node({}, createLogger('info', stream));
    const self = n.httpUrl;
    expect((await pollingStatus(n, 'https://evil.example')).status).toBe(403);
    expect((await rawWebSocket(n.httpUrl, { Origin: 'https://evil.example' })).statusLine).toBe('HTTP/1.1 400 Bad Request');
    // The same site, and clients that send no Origin (apps, backends), keep working.
    expect((await pollingStatus(n, self)).status).toBe(200);
    expect((await pollingStatus(n, undefined)).status).toBe(200);
    const sameSite = await rawWebSocket(n.httpUrl, { Origin: self });
    cleanups.push(() => sameSite.socket.destroy());
    expect(sameSite.statusLine).toBe('HTTP/1.1 101 Switching Protocols');
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'socket handshake refused', code: 'origin_not_allowed' }));
  });

  it('allows exactly PUSHGATE_ALLOWED_ORIGINS (and the old name PUSHGATE_CORS_ORIGINS), with matching CORS headers', async () => {
    for (const variable of ['PUSHGATE_ALLOWED_ORIGINS', 'PUSHGATE_CORS_ORIGINS']) {
      const n = await node({ [variable]: 'https://app.example.com' });
      expect(await pollingStatus(n, 'https://app.example.com')).toEqual({ status: 200, allowOrigin: 'https://app.example.com' });
      expect(await pollingStatus(n, 'https://evil.example')).toEqual({ status: 403, allowOrigin: null });
      const allowed = await rawWebSocket(n.httpUrl, { Origin: 'https://app.example.com' });
      cleanups.push(() => allowed.socket.destroy());
      expect(allowed.statusLine).toBe('HTTP/1.1 101 Switching Protocols');
      expect((await rawWebSocket(n.httpUrl, { Origin: 'https://evil.example' })).statusLine).toBe('HTTP/1.1 400 Bad Request');
    }
  });

  it('allows any origin in dev mode when no allowlist is set', async () => {
    const n = await node({ PUSHGATE_DEV: '1' });
    expect(await pollingStatus(n, 'http://localhost:5173')).toEqual({ status: 200, allowOrigin: 'http://localhost:5173' });
  });
});
