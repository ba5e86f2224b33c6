import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DeliveryMode } from '../../src/gen/pushgate/v1/inbox.js';
import { TestPki } from '../support/certificates.js';
import { startNode, type TestNode } from '../support/node.js';
import { connectClient, openClient } from '../support/socket-client.js';
import { signToken, TEST_SECRET } from '../support/tokens.js';
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

  /** Pushes kept in `userId`'s inbox (the user has no session), through the node's gRPC API. */
  async function stored(userId: string, ...messageIds: string[]): Promise<void> {
    for (const messageId of messageIds) {
      const response = await node.client.pushToUser({ userId, event: 'notice', messageId, deliveryMode: DeliveryMode.DELIVERY_MODE_STORE });
      expect(response.stored).toBe(true);
    }
  }

  it('push --store / --store-if-unacked / --ttl / --each-client-type keep a message; a repeated --message-id shows as a duplicate', async () => {
    const userId = `${USER}-store`;
    const push = (...flags: string[]) => pushgate(node, ['push', '--user', userId, '--event', 'notice', ...flags]);

    const run = await push('--data', '{"id":1}', '--store', '--ttl', '1h', '--each-client-type', '--message-id', 'st-1');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      `user ${userId} has no live session: kept for replay on connect\n` +
        `message st-1 to user ${userId}: 0 sessions, 0 acked, 0 timed out, 0 failed; stored in the inbox until acked\n`,
    );
    const again = await push('--data', '{"id":1}', '--store', '--message-id', 'st-1');
    expect(again.stdout).toContain('; stored in the inbox until acked; duplicate: this message id was pushed before');
    const json = await push('--store-if-unacked', '--message-id', 'st-2', '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ messageId: 'st-2', stored: true, duplicate: false, deliveries: [] });
    const repeated = await push('--store-if-unacked', '--message-id', 'st-2', '--json');
    expect(JSON.parse(repeated.stdout)).toMatchObject({ messageId: 'st-2', stored: true, duplicate: true });
    const live = await push('--message-id', 'st-3', '--json');
    expect(JSON.parse(live.stdout)).toMatchObject({ stored: false, duplicate: false });

    const batch = await pushgate(node, [
      'push',
      '--user',
      userId,
      '--user',
      `${userId}-2`,
      '--event',
      'notice',
      '--store',
      '--message-id',
      'sb',
    ]);
    expect(batch.code).toBe(0);
    expect(batch.stdout.match(/│ NO SESSION \(STORED\) │/g)).toHaveLength(2);
    expect(batch.stdout).toMatch(/: 0 sessions, 0 acked, 0 timed out, 0 failed; 2 users stored in the inbox until acked\n$/);
    await node.client.deleteInbox({ userId, messageIds: [`sb:${userId}`] });

    const { messages } = await node.client.listInbox({ userId });
    expect(messages.map((m) => [m.messageId, m.data, m.removal, m.expiresAt!.getTime() - m.sentAt!.getTime()])).toEqual([
      ['st-1', { id: 1 }, 2, 3_600_000],
      ['st-2', null, 1, node.app.config.inbox.defaultTtlS * 1000],
    ]);
  });

  it('push refuses storage flags without a storing mode (3), and conflicting or malformed ones (2)', async () => {
    const push = (...flags: string[]) => pushgate(node, ['push', '--user', `${USER}-store-bad`, '--event', 'notice', ...flags]);
    const [ttl, each, both, fraction, noAck] = await Promise.all([
      push('--ttl', '60'),
      push('--each-client-type'),
      push('--store', '--store-if-unacked'),
      push('--store', '--ttl', '1500ms'),
      push('--store', '--no-ack'),
    ]);
    expect([ttl.code, each.code, both.code, fraction.code, noAck.code]).toEqual([3, 3, 2, 2, 3]);
    expectOneErrorLine(ttl, /^pushgate: INVALID_ARGUMENT: --ttl is for stored messages: add --store or --store-if-unacked/);
    expectOneErrorLine(each, /^pushgate: INVALID_ARGUMENT: --each-client-type is for stored messages/);
    expectOneErrorLine(both, /option '--store' cannot be used with option '--store-if-unacked'/);
    expectOneErrorLine(fraction, /--ttl is whole seconds/);
    expectOneErrorLine(noAck, /^pushgate: INVALID_ARGUMENT: /);
  });

  it('push --wait-for any returns at the first ack and shows the others PENDING; --wait-for is for one user only', async () => {
    const userId = `${USER}-wait`;
    const [quick, silent] = await Promise.all([node.connect(userId, 'app'), node.connect(userId, 'web')]);
    cleanups.push(() => {
      for (const s of [quick, silent]) s.close();
    });
    acker(quick, 'quick');
    silent.on('notice', () => undefined);

    const startedAt = Date.now();
    const run = await pushgate(node, ['push', '--user', userId, '--event', 'notice', '--timeout', '20s', '--wait-for', 'any']);
    expect(run.code).toBe(0);
    expect(Date.now() - startedAt).toBeLessThan(15_000);
    expect(run.stdout.split('\n').find((l) => l.includes(quick.id!))).toMatch(/│ ACKED +│/);
    expect(run.stdout.split('\n').find((l) => l.includes(silent.id!))).toMatch(/│ PENDING +│/);
    expect(run.stdout).toMatch(/: 2 sessions, 1 acked, 0 timed out, 0 failed, 1 pending\n$/);

    const [several, unknown, noAck] = await Promise.all([
      pushgate(node, ['push', '--user', userId, '--user', 'other', '--event', 'notice', '--wait-for', 'none']),
      pushgate(node, ['push', '--user', userId, '--event', 'notice', '--wait-for', 'some']),
      pushgate(node, ['push', '--user', userId, '--event', 'notice', '--wait-for', 'none', '--no-ack']),
    ]);
    expect([several.code, unknown.code, noAck.code]).toEqual([2, 2, 2]);
    expectOneErrorLine(several, /--wait-for is for one user/);
    expectOneErrorLine(unknown, /argument 'some' is invalid\. Allowed choices are all, any, none/);
    expectOneErrorLine(noAck, /option '--wait-for <when>' cannot be used with option '--no-ack'/);
  });

  it('inbox pages through ListInbox up to --limit (table and --json); inbox-delete removes chosen messages or --all', async () => {
    const userId = `${USER}-inbox`;
    await stored(userId, 'ib-1', 'ib-2', 'ib-3');

    const run = await pushgate(node, ['inbox', '--user', userId, '--page-size', '1']);
    expect(run.code).toBe(0);
    const ids = run.stdout.split('\n').flatMap((line) => /^│ (ib-\d) +│ notice +│/.exec(line)?.[1] ?? []);
    expect(ids).toEqual(['ib-1', 'ib-2', 'ib-3']);
    expect(run.stdout).toMatch(/│ any_session +│/);
    expect(run.stdout).toMatch(new RegExp(`3 messages in the inbox of user ${userId}\\n$`));

    const limited = await pushgate(node, ['inbox', '--user', userId, '--limit', '2', '--json']);
    const listing = JSON.parse(limited.stdout) as { messages: { messageId: string; removal: string; attempts: number }[]; more: boolean };
    expect(listing.messages.map((m) => [m.messageId, m.removal, m.attempts])).toEqual([
      ['ib-1', 'REMOVAL_POLICY_ANY_SESSION', 0],
      ['ib-2', 'REMOVAL_POLICY_ANY_SESSION', 0],
    ]);
    expect(listing.more).toBe(true);

    const chosen = await pushgate(node, ['inbox-delete', '--user', userId, 'ib-2', 'never-stored']);
    expect(chosen).toMatchObject({ code: 0, stdout: `removed 1 message from the inbox of user ${userId} (asked: 2 message ids)\n` });
    const all = await pushgate(node, ['inbox-delete', '--user', userId, '--all', '--json']);
    expect(JSON.parse(all.stdout)).toEqual({ deleted: 2 });
    expect(await pushgate(node, ['inbox', '--user', userId])).toMatchObject({ code: 0, stdout: `user ${userId} has no stored message\n` });

    const [neither, both, zero, empty] = await Promise.all([
      pushgate(node, ['inbox-delete', '--user', userId]),
      pushgate(node, ['inbox-delete', '--user', userId, '--all', 'ib-1']),
      pushgate(node, ['inbox', '--user', userId, '--limit', '0']),
      pushgate(node, ['inbox', '--user', '']),
    ]);
    expect([neither.code, both.code, zero.code, empty.code]).toEqual([2, 2, 2, 3]);
    expectOneErrorLine(neither, /name the message ids to remove, or pass --all/);
    expectOneErrorLine(both, /give message ids or --all, not both/);
    expectOneErrorLine(zero, /--limit must be a whole number from 1/);
    expectOneErrorLine(empty, /^pushgate: INVALID_ARGUMENT: .*user_id/);
  });

  it('message shows each session’s status, attempt, replay and ack data (table and --json); an unknown id exits 5 (NOT_FOUND)', async () => {
    const userId = `${USER}-message`;
    await stored(userId, 'mr-1');
    // The handler is on before the socket connects: the replay comes right after the handshake.
    const socket = openClient(node.httpUrl, { token: await signToken(userId), clientType: 'app' });
    cleanups.push(() => socket.close());
    acker(socket, 'replayed');
    await waitFor('the replay to be acked', async () => (await node.client.listInbox({ userId })).messages.length === 0);

    const run = await pushgate(node, ['message', 'mr-1']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout.split('\n')[0]).toMatch(
      new RegExp(`^message mr-1 to user ${userId}: event notice, sent \\S+Z, store; left the inbox \\S+Z: acked$`),
    );
    expect(run.stdout.split('\n').find((l) => l.includes(socket.id!))).toMatch(
      /│ app +│ \S+ +│ ACKED +│ 1 +│ yes +│ \S+Z +│ \d+\.\d ms +│ \{"from":"replayed"\}/,
    );

    const json = await pushgate(node, ['message', 'mr-1', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({
      messageId: 'mr-1',
      userId,
      deliveryMode: 'DELIVERY_MODE_STORE',
      stored: false,
      removed: 'RECEIPT_EVENT_KIND_ACKED',
      deliveries: [{ session: { sessionId: socket.id }, status: 'DELIVERY_STATUS_ACKED', ackData: { from: 'replayed' }, replay: true }],
    });

    const unknown = await pushgate(node, ['message', 'never-pushed']);
    expect(unknown.code).toBe(5);
    expectOneErrorLine(unknown, /^pushgate: NOT_FOUND: no receipt for message_id "never-pushed"/);
  });

  it('receipts follows receipt events as they happen, ends cleanly on SIGINT, and --resume continues after a cursor', async () => {
    const userId = `${USER}-receipts`;
    const watch = start(['receipts', '--user', userId], { PUSHGATE_ADDRESS: node.grpcAddress });
    cleanups.push(() => watch.child.kill('SIGKILL'));
    await waitFor('the stream to open', () => watch.stderr().includes('watching receipts'), { timeoutMs: 15_000 });
    // A live stream shows what happens after the node subscribed it: push until the first line comes.
    let warm = 0;
    while (!watch.stdout().includes('STORED')) {
      await stored(userId, `rw-${warm++}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const firstLine = watch.stdout().split('\n')[0]!;
    const firstCursor = /cursor=(\S+)$/.exec(firstLine)![1]!;

    await stored(userId, 'rc-1');
    await node.client.deleteInbox({ userId, messageIds: ['rc-1'] });
    const line = await waitFor('the DELETED line', () =>
      watch
        .stdout()
        .split('\n')
        .find((l) => l.includes('DELETED') && l.includes('message=rc-1')),
    );
    expect(line).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\S+Z +DELETED +message=rc-1 user=${userId} cursor=\\S+$`));
    expect(watch.stdout()).toMatch(new RegExp(`STORED +message=rc-1 user=${userId} cursor=`));

    watch.child.kill('SIGINT');
    const run = await watch.exited;
    expect(run).toMatchObject({ code: 0, signal: null });
    expect(run.stderr).toMatch(/last cursor: \S+ \(continue with --resume \S+\)/);

    const resumed = start(['receipts', '--user', userId, '--resume', firstCursor, '--json'], { PUSHGATE_ADDRESS: node.grpcAddress });
    cleanups.push(() => resumed.child.kill('SIGKILL'));
    await waitFor('the events after the cursor', () => resumed.stdout().includes('RECEIPT_EVENT_KIND_DELETED'), { timeoutMs: 15_000 });
    resumed.child.kill('SIGINT');
    const events = (await resumed.exited).stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; messageId: string; userId: string; cursor: string });
    expect(events.at(-2)).toMatchObject({ kind: 'RECEIPT_EVENT_KIND_STORED', messageId: 'rc-1', userId });
    expect(events.at(-1)).toMatchObject({ kind: 'RECEIPT_EVENT_KIND_DELETED', messageId: 'rc-1', userId });
    expect(events.some((e) => e.cursor === firstCursor)).toBe(false);

    const bad = await pushgate(node, ['receipts', '--resume', 'not-a-cursor']);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(
      /^watching receipts of every user at \S+ \(Ctrl-C to stop\)\npushgate: INVALID_ARGUMENT: "not-a-cursor" is not a receipt cursor\n$/,
    );
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
