import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TestPki } from '../support/certificates.js';
import { startNode, type TestNode } from '../support/node.js';
import { connectClient } from '../support/socket-client.js';
import { TEST_SECRET } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

// The `pushgate` command as an operator runs it: the package's bin, built once for this file into a
// temp dir laid out as the package is (dist/ next to package.json), run as a subprocess against a
// real node on loopback, with real Socket.IO clients on the other side. Built rather than run
// through tsx: each run then starts in a fraction of the time, and what is tested is what ships.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const USER = 'cli-user';
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; version: string };
const BUILD = mkdtempSync(join(tmpdir(), 'pushgate-cli-build-'));
const BIN = join(BUILD, PACKAGE.bin.pushgate!);

beforeAll(() => {
  // Type errors are the typecheck's business; tsc emits the JavaScript regardless, and that is what runs here.
  const tsc = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(BUILD, 'dist')],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  );
  if (!existsSync(BIN)) throw new Error(`the build made no ${BIN}: ${tsc.stdout}${tsc.stderr}`);
  copyFileSync(join(ROOT, 'package.json'), join(BUILD, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(BUILD, 'node_modules'));
}, 120_000);
afterAll(() => rmSync(BUILD, { recursive: true, force: true }));

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface Running {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exited: Promise<Run>;
}

const children = new Set<ChildProcess>();
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
// Every run is awaited by its test; one left over (a test that failed midway) is killed here, not
// after each test, where it would kill the runs of tests still going concurrently.
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

/** The environment without any pushgate setting, so only what a test gives applies. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PUSHGATE_')) env[key] = value;
  return { ...env, ...extra };
}

function start(
  args: readonly string[],
  env: Record<string, string> = {},
  command: readonly string[] = ['--import', 'tsx', 'src/cli/pushgate.ts'],
): Running {
  const child = spawn(process.execPath, [...command, ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<Run>((resolve) =>
    child.once('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Runs `pushgate …` to its end against `node` (its address through PUSHGATE_ADDRESS, as an operator's shell would). */
function pushgate(node: TestNode | undefined, args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return start(args, { ...(node && { PUSHGATE_ADDRESS: node.grpcAddress }), ...env }).exited;
}

/** Every stderr line of a failed run is one `pushgate: …` line: no stack trace, no second line. */
function expectOneErrorLine(run: Run, pattern: RegExp): void {
  expect(run.stderr).toMatch(/^pushgate: [^\n]*\n$/);
  expect(run.stderr).toMatch(pattern);
}

/** A client that acks each `notice` with its own name and keeps what it received. */
function acker(socket: Socket, name: string): unknown[] {
  const received: unknown[] = [];
  socket.on('notice', (data: unknown, ack?: (reply: unknown) => void) => {
    received.push(data);
    // A fire-and-forget push (--no-ack) comes without an ack callback.
    ack?.({ from: name });
  });
  return received;
}

describe('pushgate CLI against a node', () => {
  let node: TestNode;

  beforeAll(async () => {
    node = await startNode();
  });
  afterAll(async () => {
    await node?.stop();
  });

  async function threeClients(userId: string): Promise<{ sockets: Socket[]; received: unknown[][] }> {
    const sockets = await Promise.all(['app', 'pc', 'web'].map((type) => node.connect(userId, type)));
    cleanups.push(() => {
      for (const s of sockets) s.close();
    });
    return { sockets, received: sockets.map((s, i) => acker(s, `client-${i}`)) };
  }

  it('push prints one ACKED row per session and a summary; --json gives the same response to scripts', async () => {
    const userId = `${USER}-push`;
    const { sockets, received } = await threeClients(userId);

    const run = await pushgate(node, ['push', '--user', userId, '--event', 'notice', '--data', '{"id":1}', '--timeout', '5s']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(received).toEqual([[{ id: 1 }], [{ id: 1 }], [{ id: 1 }]]);
    for (const [i, socket] of sockets.entries()) {
      const row = run.stdout.split('\n').find((line) => line.includes(socket.id!));
      expect(row).toMatch(
        new RegExp(
          `│ ${['app', 'pc', 'web'][i]} +│ ${node.app.config.server.nodeId} +│ ACKED +│ \\d+\\.\\d ms +│ \\{"from":"client-${i}"\\}`,
        ),
      );
    }
    expect(run.stdout.match(/ACKED/g)).toHaveLength(3);
    expect(run.stdout).toMatch(new RegExp(`message \\S+ to user ${userId}: 3 sessions, 3 acked, 0 timed out, 0 failed\\n$`));

    const json = await pushgate(node, [
      'push',
      '--user',
      userId,
      '--event',
      'notice',
      '--data',
      '{"id":2}',
      '--message-id',
      'm-2',
      '--json',
    ]);
    expect(json.code).toBe(0);
    const response = JSON.parse(json.stdout) as {
      messageId: string;
      acked: number;
      deliveries: { session: { sessionId: string }; status: string; ackData: unknown }[];
    };
    expect(response.messageId).toBe('m-2');
    expect(response.acked).toBe(3);
    expect(response.deliveries.map((d) => [d.session.sessionId, d.status, d.ackData]).sort()).toEqual(
      sockets.map((s, i) => [s.id, 'DELIVERY_STATUS_ACKED', { from: `client-${i}` }]).sort(),
    );
  });

  it('push to several users uses PushToUsers: a row per session with its user, a summary; --json gives JSON lines', async () => {
    const [one, two] = [`${USER}-batch-1`, `${USER}-batch-2`];
    const first = await threeClients(one);
    const second = await threeClients(two);
    const absent = `${USER}-batch-none`;
    const dir = mkdtempSync(join(tmpdir(), 'pushgate-users-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'users.txt');
    writeFileSync(file, `${two}\n\n${absent}\n`);

    const run = await pushgate(node, [
      'push',
      '--user',
      one,
      '--users-file',
      file,
      '--event',
      'notice',
      '--data',
      '7',
      '--message-id',
      'b-7',
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect([...first.received, ...second.received]).toEqual(Array(6).fill([7]));
    for (const [userId, sockets] of [
      [one, first.sockets],
      [two, second.sockets],
    ] as const) {
      for (const socket of sockets) {
        expect(run.stdout.split('\n').find((line) => line.includes(socket.id!))).toMatch(
          new RegExp(`^│ ${userId} +│ ${socket.id} .*│ ACKED +│`),
        );
      }
    }
    expect(run.stdout).toMatch(new RegExp(`│ ${absent} +│ +│ +│ +│ NO SESSION +│`));
    expect(run.stdout).toMatch(/message b-7 to 3 users \(1 without a live session\): 6 sessions, 6 acked, 0 timed out, 0 failed\n$/);

    const json = await pushgate(node, ['push', '--user', one, '--user', absent, '--event', 'notice', '--message-id', 'b-8', '--json']);
    expect(json.code).toBe(0);
    const lines = json.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ userId: absent, messageId: `b-8:${absent}`, deliveries: [] });
    expect(lines[1]).toMatchObject({ userId: one, messageId: `b-8:${one}`, acked: 3 });
    expect((lines[1]!.deliveries as { status: string }[]).map((d) => d.status)).toEqual(Array(3).fill('DELIVERY_STATUS_ACKED'));
    expect(lines[2]).toEqual({
      summary: { messageId: 'b-8', users: 2, usersWithoutSessions: 1, sessions: 3, acked: 3, timedOut: 0, failed: 0, sent: 0, stored: 0 },
    });
  });

  it('push --no-ack reports SENT, and --client-type narrows the sessions', async () => {
    const userId = `${USER}-noack`;
    await threeClients(userId);
    const run = await pushgate(node, ['push', '--user', userId, '--event', 'notice', '--no-ack', '--client-type', 'app,pc']);
    expect(run.code).toBe(0);
    expect(run.stdout.match(/│ SENT /g)).toHaveLength(2);
    expect(run.stdout).toContain(': 2 sessions, 2 sent, 0 failed');
  });

  it('sessions pages through ListSessions to the end (table and --json)', async () => {
    const userId = `${USER}-list`;
    const { sockets } = await threeClients(userId);
    const run = await pushgate(node, ['sessions', '--user', userId, '--page-size', '1']);
    expect(run.code).toBe(0);
    for (const socket of sockets) expect(run.stdout).toContain(socket.id!);
    expect(run.stdout).toContain(`3 sessions of user ${userId}`);

    const json = await pushgate(node, ['sessions', '--user', userId, '--page-size', '2', '--json']);
    const listed = (JSON.parse(json.stdout) as { sessions: { sessionId: string; clientType: string }[] }).sessions;
    // Oldest connection first, across both pages.
    const direct = await node.client.listSessions({ userId });
    expect(listed.map((s) => s.sessionId)).toEqual(direct.sessions.map((s) => s.sessionId));
    expect(listed).toHaveLength(3);
  });

  it('presence follows a connect as it happens and ends cleanly on SIGINT (exit 0)', async () => {
    const userId = `${USER}-presence`;
    const watch = start(['presence', '--user', userId, '--snapshot'], { PUSHGATE_ADDRESS: node.grpcAddress });
    cleanups.push(() => watch.child.kill('SIGKILL'));
    await waitFor('SNAPSHOT_COMPLETE', () => watch.stdout().includes('SNAPSHOT_COMPLETE'), { timeoutMs: 15_000 });

    const socket = await node.connect(userId, 'app');
    cleanups.push(() => socket.close());
    const line = await waitFor('the SESSION_CONNECTED line', () =>
      watch
        .stdout()
        .split('\n')
        .find((l) => l.includes('SESSION_CONNECTED') && l.includes(`session=${socket.id}`)),
    );
    expect(line).toMatch(
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\dT\\S+Z +SESSION_CONNECTED +user=${userId} session=\\S+ client-type=app node=\\S+ sessions=1 cursor=\\S+$`,
      ),
    );
    expect(watch.stdout()).toMatch(new RegExp(`USER_ONLINE +user=${userId}`));

    watch.child.kill('SIGINT');
    const run = await watch.exited;
    expect(run).toMatchObject({ code: 0, signal: null });
    expect(run.stderr).toMatch(/last cursor: \S+ \(continue with --resume \S+\)/);
  });

  it('kick closes the chosen session, which is told the reason first; the others stay', async () => {
    const userId = `${USER}-kick`;
    const [kicked, kept] = await Promise.all([node.connect(userId, 'app'), node.connect(userId, 'pc')]);
    cleanups.push(() => {
      for (const s of [kicked, kept]) s?.close();
    });
    const notices: unknown[] = [];
    kicked!.on('pushgate:disconnect', (notice: unknown) => notices.push(notice));

    const [kickedId, keptId] = [kicked!.id!, kept!.id!];
    const run = await pushgate(node, ['kick', '--user', userId, '--session', kickedId, '--reason', 'maintenance']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(kickedId);
    expect(run.stdout).not.toContain(keptId);
    expect(run.stdout).toContain(`closed 1 session of user ${userId} (reason: maintenance)`);
    await waitFor('the kicked client to be disconnected', () => !kicked!.connected);
    expect(notices).toEqual([{ reason: 'maintenance' }]);
    expect(kept!.connected).toBe(true);
  });

  it('token mints a token the edge accepts (HS256 from PUSHGATE_JWT_SECRET)', async () => {
    const run = await pushgate(undefined, ['token', '--user', `${USER}-token`, '--client-type', 'app', '--ttl', '10m', '--json'], {
      PUSHGATE_JWT_SECRET: TEST_SECRET,
    });
    expect(run.code).toBe(0);
    const minted = JSON.parse(run.stdout) as { token: string; expiresAt: string; auth: { token: string; clientType: string } };
    expect(Date.parse(minted.expiresAt) - Date.now()).toBeGreaterThan(9 * 60_000);
    const socket = await connectClient(node.httpUrl, minted.auth);
    cleanups.push(() => socket.close());
    const { sessions } = await node.client.listSessions({ userId: `${USER}-token` });
    expect(sessions.map((s) => [s.sessionId, s.clientType])).toEqual([[socket.id, 'app']]);
  });

  it('token refuses what a node would refuse: a TTL over PUSHGATE_MAX_TOKEN_TTL, or only a public key (exit 2)', async () => {
    const tooLong = await pushgate(undefined, ['token', '--user', 'u', '--ttl', '2h'], {
      PUSHGATE_JWT_SECRET: TEST_SECRET,
      PUSHGATE_MAX_TOKEN_TTL: '3600',
    });
    expect(tooLong.code).toBe(2);
    expectOneErrorLine(tooLong, /PUSHGATE_MAX_TOKEN_TTL \(3600 s\)/);

    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const publicOnly = await pushgate(undefined, ['token', '--user', 'u'], {
      PUSHGATE_JWT_PUBLIC_KEY: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    });
    expect(publicOnly.code).toBe(2);
    expectOneErrorLine(publicOnly, /minting one needs the private key: set --jwt-private-key \/ PUSHGATE_JWT_PRIVATE_KEY/);
    expect(publicOnly.stdout).toBe('');
  });

  // Independent one-shot runs: concurrent, to keep the file quick.
  describe.concurrent('exit codes follow the gRPC status', () => {
    it('INVALID_ARGUMENT (3): --data that is not JSON, found before the call', async () => {
      const run = await pushgate(node, ['push', '--user', 'u', '--event', 'notice', '--data', '{id:1}']);
      expect(run.code).toBe(3);
      expectOneErrorLine(run, /^pushgate: INVALID_ARGUMENT: --data must be JSON/);
    });

    it('INVALID_ARGUMENT (3): an empty user, refused by the node', async () => {
      const run = await pushgate(node, ['push', '--user', '', '--event', 'notice']);
      expect(run.code).toBe(3);
      expectOneErrorLine(run, /^pushgate: INVALID_ARGUMENT: .*user_id/);
    });

    it('UNAVAILABLE (14): nothing listens at the address', async () => {
      const run = await pushgate(undefined, ['sessions', '--user', 'u', '--address', '127.0.0.1:1']);
      expect(run.code).toBe(14);
      expectOneErrorLine(run, /^pushgate: UNAVAILABLE: .*ECONNREFUSED.*is a node listening there\?/);
    });

    it('usage error (2): a missing required flag, an unknown command, a bad address', async () => {
      const runs = await Promise.all([
        pushgate(node, ['push', '--user', 'u']),
        pushgate(node, ['psh']),
        pushgate(undefined, ['sessions', '--user', 'u', '--address', 'localhost']),
      ]);
      expect(runs.map((r) => r.code)).toEqual([2, 2, 2]);
      expectOneErrorLine(runs[0]!, /required option '--event <name>' not specified/);
      expectOneErrorLine(runs[1]!, /unknown command 'psh' \(Did you mean push\?\)/);
      expectOneErrorLine(runs[2]!, /--address \/ PUSHGATE_ADDRESS must be host:port/);
    });
  });
});

describe('pushgate CLI against a node that requires an API key', () => {
  const KEY = 'cli-test-key-0123456789abcdef';
  let node: TestNode;

  beforeAll(async () => {
    node = await startNode({ PUSHGATE_API_KEYS: `ops:push,read,admin:${KEY}` });
  });
  afterAll(async () => {
    await node?.stop();
  });

  it('exits 16 (UNAUTHENTICATED) without a key, naming the variable to set; succeeds with PUSHGATE_API_KEY', async () => {
    const without = await pushgate(node, ['sessions', '--user', 'u']);
    expect(without.code).toBe(16);
    expectOneErrorLine(without, /^pushgate: UNAUTHENTICATED: .*set PUSHGATE_API_KEY/);

    const wrong = await pushgate(node, ['sessions', '--user', 'u'], { PUSHGATE_API_KEY: 'not-the-key' });
    expect(wrong.code).toBe(16);

    const withKey = await pushgate(node, ['sessions', '--user', 'u'], { PUSHGATE_API_KEY: KEY });
    expect(withKey).toMatchObject({ code: 0, stderr: '', stdout: 'user u has no live session\n' });
  });
});

describe('pushgate CLI with the node’s other credentials', () => {
  it('calls over mutual TLS with --tls-ca, --tls-cert and --tls-key; without the client certificate the call fails', async () => {
    const pki = new TestPki();
    cleanups.push(() => pki.remove());
    const server = pki.serverCert('server');
    const node = await startNode({
      PUSHGATE_GRPC_TLS_CERT: server.cert,
      PUSHGATE_GRPC_TLS_KEY: server.key,
      PUSHGATE_GRPC_TLS_CLIENT_CA: pki.ca.cert,
      PUSHGATE_GRPC_CLIENT_CERT_SCOPES: 'ops=push,read,admin',
    });
    cleanups.push(() => node.stop());
    const client = pki.clientCert('ops');
    const [mutual, noCertificate, plaintext] = await Promise.all([
      pushgate(node, ['sessions', '--user', 'u', '--tls-ca', pki.ca.cert, '--tls-cert', client.cert, '--tls-key', client.key]),
      pushgate(node, ['sessions', '--user', 'u', '--tls-ca', pki.ca.cert]),
      pushgate(node, ['sessions', '--user', 'u']),
    ]);
    expect(mutual).toMatchObject({ code: 0, stderr: '', stdout: 'user u has no live session\n' });
    expect(noCertificate.code).toBe(14);
    expectOneErrorLine(noCertificate, /^pushgate: UNAVAILABLE: /);
    expect(plaintext.code).toBe(14);
  });

  it('token signs ES256 with PUSHGATE_JWT_PRIVATE_KEY, checked against PUSHGATE_JWT_PUBLIC_KEY; the node accepts it', async () => {
    const pem = (key: KeyObject, type: 'spki' | 'pkcs8'): string => key.export({ type, format: 'pem' }).toString();
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const node = await startNode({ PUSHGATE_JWT_SECRET: '', PUSHGATE_JWT_PUBLIC_KEY: pem(publicKey, 'spki') });
    cleanups.push(() => node.stop());
    const signing = { PUSHGATE_JWT_PUBLIC_KEY: pem(publicKey, 'spki'), PUSHGATE_JWT_PRIVATE_KEY: pem(privateKey, 'pkcs8') };
    const run = await pushgate(undefined, ['token', '--user', 'es-user'], signing);
    expect(run.code).toBe(0);
    const socket = await connectClient(node.httpUrl, { token: run.stdout.trim(), clientType: 'app' });
    socket.close();

    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const mismatch = await pushgate(undefined, ['token', '--user', 'es-user'], {
      ...signing,
      PUSHGATE_JWT_PRIVATE_KEY: pem(other, 'pkcs8'),
    });
    expect(mismatch.code).toBe(2);
    expectOneErrorLine(mismatch, /PUSHGATE_JWT_PRIVATE_KEY is not the private half of --jwt-public-key \/ PUSHGATE_JWT_PUBLIC_KEY/);
  });
});

describe('the built pushgate bin', () => {
  it('is the package bin: runs from its shebang, and `serve --help` is the server’s help with every setting', async () => {
    expect(readFileSync(BIN, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    chmodSync(BIN, 0o755);
    const version = execFileSync(BIN, ['--version'], { encoding: 'utf8', env: cleanEnv({}) });
    expect(version.trim()).toBe(PACKAGE.version);

    const help = await start(['serve', '--help']).exited;
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: pushgate serve [options]');
    for (const name of ['PUSHGATE_JWT_SECRET', 'PUSHGATE_GRPC_PORT', 'PUSHGATE_ADDRESS', 'PUSHGATE_API_KEY', 'PUSHGATE_JWT_PRIVATE_KEY']) {
      expect(help.stdout).toContain(name);
    }
  });
});
