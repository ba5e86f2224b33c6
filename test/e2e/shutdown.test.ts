import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ClientReadableStream, status as GrpcStatus, Metadata, type StatusObject } from '@grpc/grpc-js';
import { io, type Socket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { type PresenceEvent, PresenceEventKind } from '../../src/gen/pushgate/v1/presence.js';
import { DeliveryStatus, ListSessionsRequest, type WatchPresenceResponse } from '../../src/gen/pushgate/v1/push_service.js';
import { grpcError, TestPushClient } from '../support/grpc-client.js';
import { startNode, type TestNode } from '../support/node.js';
import { connectClient, connectError } from '../support/socket-client.js';
import { signToken, TEST_SECRET } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

/** The legacy client (Socket.IO v2, engine.io protocol 3), as the existing app base ships it. */
interface V2Socket {
  on(event: string, listener: (...args: never[]) => void): void;
  once(event: string, listener: (...args: never[]) => void): void;
  close(): void;
}
const ioV2 = createRequire(import.meta.url)('socket.io-client-v2') as (url: string, options?: object) => V2Socket;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ACK_DELAY_MS = 300;

const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Watch {
  readonly call: ClientReadableStream<WatchPresenceResponse>;
  readonly events: PresenceEvent[];
  status: StatusObject | undefined;
  ended: boolean;
}

function watch(client: TestPushClient, userIds: string[]): Watch {
  const call = client.raw.watchPresence({ userIds, includeSnapshot: false, resumeAfter: '', maxEventsPerMessage: 0 });
  const watch: Watch = { call, events: [], status: undefined, ended: false };
  call.on('data', (response: WatchPresenceResponse) => watch.events.push(response.event!));
  call.on('status', (status: StatusObject) => (watch.status = status));
  call.on('end', () => (watch.ended = true));
  call.on('error', () => {});
  cleanups.push(() => call.cancel());
  return watch;
}

function summary(events: readonly PresenceEvent[]): [PresenceEventKind, string, string | undefined, string, number][] {
  return events.map((e) => [e.kind, e.userId, e.session?.sessionId, e.reason, e.sessionCount]);
}

/**
 * A client that answers pushes of `event` after ACK_DELAY_MS and records what happens to it, in
 * order: when the push arrived, when it acked, the server's disconnect notice and the disconnect.
 */
function slowAcker(socket: Socket, event = 'notice'): string[] {
  const timeline: string[] = [];
  socket.on(event, (_data: unknown, ack: (reply: unknown) => void) => {
    timeline.push('received');
    setTimeout(() => {
      timeline.push('acked');
      ack({ done: true });
    }, ACK_DELAY_MS);
  });
  socket.on('pushgate:disconnect', (notice: { reason: string }) => timeline.push(`notice:${notice.reason}`));
  socket.on('disconnect', (reason: string) => timeline.push(`disconnect:${reason}`));
  return timeline;
}

describe('graceful shutdown of a node (App.stop)', () => {
  async function start(env: Record<string, string> = {}): Promise<TestNode> {
    const node = await startNode(env);
    cleanups.push(() => node.stop());
    return node;
  }

  it('finishes the push in flight, then tells clients and presence watchers server_shutdown, and refuses new work', async () => {
    const node = await start();
    const socket = await node.connect('u-1', 'app');
    const sessionId = socket.id!;
    const timeline = slowAcker(socket);
    const before = node.app.registry.subscriberCount();
    const stream = watch(node.client, ['u-1']);
    await waitFor('the presence stream to be subscribed', () => node.app.registry.subscriberCount() === before + 1);

    const push = node.client.pushToUser({ userId: 'u-1', event: 'notice', data: { n: 1 }, ackTimeoutMs: 5000 });
    await waitFor('the client to receive the push', () => timeline.includes('received'));
    const stopped = node.app.stop();

    // While draining: no new calls, no new sockets.
    const lateCall = await grpcError(node.client.pushToUser({ userId: 'u-1', event: 'notice', data: { n: 2 } }));
    expect(lateCall.code).toBe(GrpcStatus.UNAVAILABLE);
    const lateSocket = await connectError(node.httpUrl, { token: await signToken('u-2'), clientType: 'web' });
    expect(lateSocket.code).toBe('shutting_down');

    const response = await push;
    expect(response.deliveries.map((d) => [d.session!.sessionId, d.status])).toEqual([[sessionId, DeliveryStatus.DELIVERY_STATUS_ACKED]]);
    expect(response.deliveries[0]!.ackData).toEqual({ done: true });
    expect(response.acked).toBe(1);

    await stopped;
    await waitFor('the client to be disconnected', () => timeline.some((entry) => entry.startsWith('disconnect:')));
    // The server goes away rather than kicking the client out ("io server disconnect"), so a
    // Socket.IO client reconnects on its own, to another node.
    expect(timeline).toEqual(['received', 'acked', 'notice:server_shutdown', 'disconnect:transport close']);
    expect(socket.connected).toBe(false);

    await waitFor('the presence stream to end', () => stream.status);
    expect(summary(stream.events)).toEqual([
      [PresenceEventKind.PRESENCE_EVENT_KIND_SESSION_DISCONNECTED, 'u-1', sessionId, 'server_shutdown', 0],
      [PresenceEventKind.PRESENCE_EVENT_KIND_USER_OFFLINE, 'u-1', sessionId, 'server_shutdown', 0],
    ]);
    expect(stream.status!.code).toBe(GrpcStatus.OK);
    expect(stream.ended).toBe(true);
    expect(node.app.registry.subscriberCount()).toBe(before);
    expect(node.app.presence.size).toBe(0);

    // Stopped: calls and sockets fail, and stopping again is harmless.
    expect((await grpcError(node.client.pushToUser({ userId: 'u-1', event: 'notice', data: 3 }))).code).toBe(GrpcStatus.UNAVAILABLE);
    await expect(connectClient(node.httpUrl, { token: await signToken('u-3'), clientType: 'web' })).rejects.toThrow();
    await node.app.stop();
  });

  it('still gets the notice to a client whose connection is busy receiving a push as shutdown begins', async () => {
    const node = await start();
    const socket = await node.connect('u-1', 'app');
    const timeline: string[] = [];
    socket.on('news', (data: { n: number }) => timeline.push(`news:${data.n}`));
    socket.on('pushgate:disconnect', (notice: { reason: string }) => timeline.push(`notice:${notice.reason}`));
    socket.on('disconnect', (reason: string) => timeline.push(`disconnect:${reason}`));

    // A fire-and-forget push handed to the socket by the engine in the same tick as the stop: the
    // connection is still writing it when the notice is queued behind it.
    const push = {
      userId: 'u-1',
      event: 'news',
      data: { n: 1 },
      clientTypes: [],
      ackTimeoutMs: 1000,
      noAck: true,
      messageId: 'm-1',
      sentAtMs: Date.now(),
    };
    const result = await node.app.push.push(push, new AbortController().signal);
    expect(result.deliveries.map((d) => d.status)).toEqual(['sent']);
    await node.app.stop();

    await waitFor('the client to be disconnected', () => timeline.some((entry) => entry.startsWith('disconnect:')));
    expect(timeline).toEqual(['news:1', 'notice:server_shutdown', 'disconnect:transport close']);
  });

  it.each(['v4', 'v2'] as const)(
    'gets the notice to a long-polling Socket.IO %s client that is between two polls as shutdown begins',
    async (version) => {
      const node = await start();
      const options = { transports: ['polling'], reconnection: false, forceNew: true };
      const token = await signToken('u-1');
      const socket =
        version === 'v4'
          ? io(node.httpUrl, { ...options, auth: { token, clientType: 'web' } })
          : ioV2(`${node.httpUrl}?${new URLSearchParams({ token, clientType: 'web' }).toString()}`, options);
      cleanups.push(() => socket.close());
      const timeline: string[] = [];
      let stopped: Promise<void> | undefined;
      // The push arrives in the answer to one long-poll; shutdown begins before the next poll is sent.
      socket.on('news', () => {
        timeline.push('news');
        stopped = node.app.stop();
      });
      socket.on('pushgate:disconnect', (notice: { reason: string }) => timeline.push(`notice:${notice.reason}`));
      socket.on('disconnect', () => timeline.push('disconnect'));
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));

      const response = await node.client.pushToUser({ userId: 'u-1', event: 'news', data: 1, noAck: true });
      expect(response.deliveries.map((d) => d.status)).toEqual([DeliveryStatus.DELIVERY_STATUS_SENT]);
      await waitFor('the shutdown to begin', () => stopped !== undefined);
      await stopped;

      await waitFor('the client to be disconnected', () => timeline.includes('disconnect'));
      expect(timeline).toEqual(['news', 'notice:server_shutdown', 'disconnect']);
    },
  );

  it('gives a watcher every server_shutdown event even when the node holds more sessions than the presence buffer', async () => {
    const node = await start({ PUSHGATE_PRESENCE_BUFFER: '8' });
    const users = Array.from({ length: 12 }, (_, i) => `crowd-${i}`);
    const sockets = await Promise.all(users.map((user) => node.connect(user, 'web')));
    const ids = new Map(users.map((user, i) => [user, sockets[i]!.id!]));
    const before = node.app.registry.subscriberCount();
    const stream = watch(node.client, []);
    await waitFor('the presence stream to be subscribed', () => node.app.registry.subscriberCount() === before + 1);

    await node.app.stop();

    await waitFor('the presence stream to end', () => stream.status);
    expect(stream.status!.code).toBe(GrpcStatus.OK);
    const byUser = new Map<string, unknown[]>();
    for (const [kind, userId, sessionId, reason, count] of summary(stream.events)) {
      byUser.set(userId, [...(byUser.get(userId) ?? []), [kind, sessionId, reason, count]]);
    }
    expect([...byUser.keys()].sort()).toEqual([...users].sort());
    for (const user of users) {
      expect(byUser.get(user)).toEqual([
        [PresenceEventKind.PRESENCE_EVENT_KIND_SESSION_DISCONNECTED, ids.get(user), 'server_shutdown', 0],
        [PresenceEventKind.PRESENCE_EVENT_KIND_USER_OFFLINE, ids.get(user), 'server_shutdown', 0],
      ]);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The real process, as an operator runs it.

/** Environment of the parent without any pushgate setting, so only what a test sets applies. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('PUSHGATE_') && key !== 'REDIS_URL' && key !== 'LOG_LEVEL') env[key] = value;
  }
  return { ...env, ...extra };
}

interface Proc {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A process on free loopback ports; each test adds its own auth and overrides. */
const LOOPBACK_NODE = { PUSHGATE_GRPC_PORT: '0', PUSHGATE_HTTP_PORT: '0', PUSHGATE_HOST: '127.0.0.1' };

function runPushgate(args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: ROOT,
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc: Proc = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout!.on('data', (chunk: Buffer) => (proc.stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (proc.stderr += chunk.toString()));
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return proc;
}

/** The complete JSON log lines so far (a line still being written is left for the next look). */
function logLines(proc: Proc): Record<string, unknown>[] {
  return proc.stdout
    .split('\n')
    .slice(0, -1)
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Starts a node process, stops it once it has started, and returns the warnings it logged. */
async function warningsOf(env: Record<string, string>): Promise<string[]> {
  const proc = runPushgate([], { ...LOOPBACK_NODE, ...env });
  await waitFor(
    'the "pushgate started" log line',
    () => logLines(proc).some((line) => line.msg === 'pushgate started') || proc.child.exitCode !== null,
    { timeoutMs: 20_000 },
  );
  proc.child.kill('SIGTERM');
  expect(await exitOf(proc, 10_000)).toEqual({ code: 0, signal: null });
  return logLines(proc)
    .filter((line) => line.level === 40)
    .map((line) => String(line.msg));
}

async function exitOf(proc: Proc, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`process did not exit within ${timeoutMs} ms; stderr: ${proc.stderr}`)), timeoutMs);
  });
  try {
    return await Promise.race([proc.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every PUSHGATE_* variable the source mentions (generated code aside). */
function variablesInSource(): string[] {
  const found = new Set<string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) {
        if (name !== 'gen') walk(path);
      } else if (name.endsWith('.ts')) {
        for (const match of readFileSync(path, 'utf8').matchAll(/PUSHGATE_[A-Z0-9_]*[A-Z0-9]/g)) found.add(match[0]);
      }
    }
  };
  walk(join(ROOT, 'src'));
  return [...found].sort();
}

describe('the pushgate process', () => {
  it('on SIGTERM finishes the push in flight and exits 0', async () => {
    const proc = runPushgate([], { ...LOOPBACK_NODE, PUSHGATE_JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'info' });
    const started = await waitFor(
      'the "pushgate started" log line',
      () =>
        logLines(proc).find((line) => line.msg === 'pushgate started') ??
        (proc.child.exitCode !== null ? { failed: proc.stderr } : undefined),
      { timeoutMs: 10_000 },
    );
    expect(started).toMatchObject({ grpcPort: expect.any(Number), httpPort: expect.any(Number) });
    const { grpcPort, httpPort } = started as { grpcPort: number; httpPort: number };
    expect(grpcPort).toBeGreaterThan(0);
    expect(httpPort).toBeGreaterThan(0);

    const socket = await connectClient(`http://127.0.0.1:${httpPort}`, { token: await signToken('u-1'), clientType: 'app' });
    cleanups.push(() => socket.close());
    const timeline = slowAcker(socket);
    const client = new TestPushClient(`127.0.0.1:${grpcPort}`);
    cleanups.push(() => client.close());

    const push = client.pushToUser({ userId: 'u-1', event: 'notice', data: { n: 1 }, ackTimeoutMs: 5000 });
    await waitFor('the client to receive the push', () => timeline.includes('received'));
    const signalledAt = Date.now();
    expect(proc.child.kill('SIGTERM')).toBe(true);

    const response = await push;
    expect(response.deliveries.map((d) => d.status)).toEqual([DeliveryStatus.DELIVERY_STATUS_ACKED]);
    expect(response.deliveries[0]!.ackData).toEqual({ done: true });

    const exit = await exitOf(proc, 5000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(5000);
    await waitFor('the client to be disconnected', () => timeline.some((entry) => entry.startsWith('disconnect:')));
    expect(timeline.slice(0, 3)).toEqual(['received', 'acked', 'notice:server_shutdown']);
    expect(logLines(proc).map((line) => line.msg)).toEqual(expect.arrayContaining(['draining for shutdown', 'pushgate stopped']));
  });

  it('refuses a bad setting: exits non-zero and names the variable on stderr', async () => {
    const proc = runPushgate([], { ...LOOPBACK_NODE, PUSHGATE_GRPC_PORT: 'abc', PUSHGATE_JWT_SECRET: TEST_SECRET });
    const exit = await exitOf(proc, 10_000);
    expect(exit.code).not.toBe(0);
    expect(exit.code).not.toBeNull();
    expect(proc.stderr).toContain('PUSHGATE_GRPC_PORT');
    expect(proc.stderr).toContain('abc');
    expect(proc.stdout).not.toContain('pushgate started');
  });

  it('warns at every start that development mode and insecure query auth are on, and not otherwise', async () => {
    // Both processes at once: each start compiles the sources, slow on a loaded machine.
    const [unsafe, safe] = await Promise.all([
      warningsOf({ PUSHGATE_DEV: '1', PUSHGATE_INSECURE_QUERY_AUTH: '1' }),
      warningsOf({ PUSHGATE_JWT_SECRET: TEST_SECRET }),
    ]);
    expect(unsafe).toHaveLength(2);
    expect(unsafe[0]).toMatch(/DEVELOPMENT MODE \(PUSHGATE_DEV\).*Never run this in production/);
    expect(unsafe[1]).toMatch(/INSECURE QUERY AUTH \(PUSHGATE_INSECURE_QUERY_AUTH\).*impersonate/);
    expect(safe).toEqual([]);
  }, 40_000);

  it('warns at every start that the gRPC API is open when PUSHGATE_GRPC_ALLOW_UNAUTHENTICATED is on', async () => {
    const warnings = await warningsOf({ PUSHGATE_JWT_SECRET: TEST_SECRET, PUSHGATE_GRPC_ALLOW_UNAUTHENTICATED: '1' });
    expect(warnings).toEqual([expect.stringMatching(/UNAUTHENTICATED gRPC API \(PUSHGATE_GRPC_ALLOW_UNAUTHENTICATED\)/)]);
  }, 30_000);

  it('on SIGHUP reloads the API keys: a removed key stops working without a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pushgate-sighup-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const [kept, revoked] = [randomBytes(24).toString('base64url'), randomBytes(24).toString('base64url')];
    const file = join(dir, 'keys');
    writeFileSync(file, `kept:read:${kept}\nrevoked:read:${revoked}\n`);
    const proc = runPushgate([], { ...LOOPBACK_NODE, PUSHGATE_JWT_SECRET: TEST_SECRET, PUSHGATE_API_KEYS_FILE: file });
    await waitFor('the "pushgate started" log line', () => logLines(proc).some((line) => line.msg === 'pushgate started'), {
      timeoutMs: 20_000,
    });
    const grpcPort = Number(logLines(proc).find((line) => line.msg === 'pushgate started')!.grpcPort);
    const client = new TestPushClient(`127.0.0.1:${grpcPort}`);
    cleanups.push(() => client.close());
    const list = (key: string): Promise<unknown> => {
      const metadata = new Metadata();
      metadata.set('authorization', `Bearer ${key}`);
      return new Promise((resolve) =>
        client.raw.listSessions(ListSessionsRequest.fromPartial({ userId: 'u-1' }), metadata, (err) => resolve(err?.code ?? 0)),
      );
    };
    expect(await list(revoked)).toBe(0);

    writeFileSync(file, `kept:read:${kept}\n`);
    proc.child.kill('SIGHUP');
    await waitFor('the keys to be reloaded', () => logLines(proc).some((line) => line.msg === 'API keys reloaded'), { timeoutMs: 5000 });
    expect(await list(revoked)).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(await list(kept)).toBe(0);
    proc.child.kill('SIGTERM');
    expect(await exitOf(proc, 10_000)).toEqual({ code: 0, signal: null });
  }, 30_000);

  it('refuses to start with the gRPC API open on a public address: exits non-zero naming the settings', async () => {
    const proc = runPushgate([], { ...LOOPBACK_NODE, PUSHGATE_JWT_SECRET: TEST_SECRET, PUSHGATE_GRPC_HOST: '0.0.0.0' });
    expect((await exitOf(proc, 20_000)).code).not.toBe(0);
    expect(proc.stderr).toContain('PUSHGATE_GRPC_HOST');
    expect(proc.stderr).toContain('PUSHGATE_GRPC_ALLOW_UNAUTHENTICATED');
    expect(logLines(proc).some((line) => line.msg === 'pushgate started')).toBe(false);
  }, 30_000);

  it('refuses a port already taken: exits non-zero naming the port setting, without a stack trace', async () => {
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    try {
      const taken = (squatter.address() as AddressInfo).port;
      const proc = runPushgate([], { ...LOOPBACK_NODE, PUSHGATE_HTTP_PORT: String(taken), PUSHGATE_JWT_SECRET: TEST_SECRET });
      const exit = await exitOf(proc, 10_000);
      expect(exit.code).toBe(1);
      expect(proc.stderr).toContain(`cannot serve HTTP on 127.0.0.1:${taken} (PUSHGATE_HOST, PUSHGATE_HTTP_PORT)`);
      expect(proc.stderr).toContain('EADDRINUSE');
      expect(proc.stderr).not.toMatch(/\n\s+at /);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('--help exits 0 and lists every PUSHGATE_* variable', async () => {
    const proc = runPushgate(['--help'], {});
    const exit = await exitOf(proc, 10_000);
    expect(exit).toEqual({ code: 0, signal: null });
    const documented = [
      'PUSHGATE_GRPC_PORT',
      'PUSHGATE_HTTP_PORT',
      'PUSHGATE_HOST',
      'PUSHGATE_NODE_ID',
      'PUSHGATE_JWT_SECRET',
      'PUSHGATE_JWT_PUBLIC_KEY',
      'PUSHGATE_JWT_ISSUER',
      'PUSHGATE_JWT_AUDIENCE',
      'PUSHGATE_CLIENT_TYPES',
      'PUSHGATE_ACK_TIMEOUT_MS',
      'PUSHGATE_MAX_ACK_TIMEOUT_MS',
      'PUSHGATE_MAX_PAYLOAD_BYTES',
      'PUSHGATE_DEV',
      'PUSHGATE_INSECURE_QUERY_AUTH',
      'PUSHGATE_HEARTBEAT_EVENT',
      'PUSHGATE_PING_INTERVAL_MS',
      'PUSHGATE_PING_TIMEOUT_MS',
      'PUSHGATE_PRESENCE_BUFFER',
      'PUSHGATE_SHUTDOWN_GRACE_MS',
    ];
    const listed = new Set(proc.stdout.match(/PUSHGATE_[A-Z0-9_]*[A-Z0-9]/g) ?? []);
    const missing = [...new Set([...documented, ...variablesInSource()])].filter((name) => !listed.has(name));
    expect(missing).toEqual([]);
  });
});
