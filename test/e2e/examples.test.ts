import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startNode, type TestNode } from '../support/node.js';
import { waitFor } from '../support/wait.js';

/**
 * The examples for other languages, built and run as their READMEs say against a real node:
 * examples/python (stubs from Debian's protoc, a push, a presence watcher) and examples/go (a push,
 * built in GOPATH mode from Debian's Go packages). Each part is skipped, saying which tool is
 * missing, only when its toolchain is absent; scripts/system-deps.sh installs both on Debian.
 */

// Async on purpose: the node under test runs in this process, so a synchronous child would block it.
const run = promisify(execFile);
const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));
const PYTHON = '/usr/bin/python3';
const KEY = randomBytes(24).toString('base64url');
const ACKS: Record<string, unknown> = { app: { device: 'app' }, pc: { device: 'pc', windows: 2 }, web: { device: 'web', tabs: ['inbox'] } };

function missing(paths: Record<string, string>): string[] {
  return Object.entries(paths)
    .filter(([path]) => !existsSync(path))
    .map(([path, pkg]) => `${path} (${pkg})`);
}

const pythonMissing = missing({
  '/usr/bin/protoc': 'protobuf-compiler',
  '/usr/bin/grpc_python_plugin': 'protobuf-compiler-grpc',
  '/usr/include/google/protobuf/struct.proto': 'libprotobuf-dev',
  [PYTHON]: 'python3',
  '/usr/lib/python3/dist-packages/grpc': 'python3-grpcio',
});
const goMissing = missing({
  '/usr/bin/go': 'golang-go',
  '/usr/bin/protoc': 'protobuf-compiler',
  '/usr/bin/protoc-gen-go': 'protoc-gen-go',
  '/usr/bin/protoc-gen-go-grpc': 'protoc-gen-go-grpc',
  '/usr/share/gocode/src/google.golang.org/grpc': 'golang-google-grpc-dev',
  '/usr/share/gocode/src/google.golang.org/protobuf': 'golang-google-protobuf-dev',
});
for (const [name, absent] of [
  ['examples/python', pythonMissing],
  ['examples/go', goMissing],
] as const) {
  if (absent.length > 0) console.warn(`SKIPPED ${name}: its toolchain is missing: ${absent.join(', ')}. Run scripts/system-deps.sh.`);
}

const workDir = mkdtempSync(join(tmpdir(), 'pushgate-examples-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

let node: TestNode;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await node?.stop();
});

/** A node with an API key, and three acking sessions of `userId`. */
async function nodeWithThreeSessions(userId: string): Promise<Socket[]> {
  node = await startNode({ PUSHGATE_API_KEYS: `examples:push,read:${KEY}` });
  return Promise.all(
    Object.keys(ACKS).map(async (type) => {
      const socket = await node.connect(userId, type);
      socket.on('notice', (_data: unknown, ack: (reply: unknown) => void) => ack(ACKS[type]));
      return socket;
    }),
  );
}

/** A PushToUserResponse in proto3 JSON, as both examples print it with their JSON flag. */
interface PushJson {
  messageId: string;
  acked?: number;
  deliveries: { session: { sessionId: string; clientType: string }; status: string; ackData?: unknown }[];
}

function expectThreeAcks(response: PushJson, sockets: readonly Socket[], messageId: string): void {
  expect(response.messageId).toBe(messageId);
  expect(response.acked).toBe(3);
  expect(response.deliveries.map((d) => [d.session.clientType, d.status, d.ackData]).sort()).toEqual(
    Object.entries(ACKS).map(([type, ack]) => [type, 'DELIVERY_STATUS_ACKED', ack]),
  );
  expect(new Set(response.deliveries.map((d) => d.session.sessionId))).toEqual(new Set(sockets.map((s) => s.id)));
}

describe.skipIf(pythonMissing.length > 0)('examples/python', () => {
  const stubs = join(workDir, 'python-gen');
  const env = { ...process.env, PYTHONPATH: stubs, PYTHONDONTWRITEBYTECODE: '1', PUSHGATE_API_KEY: KEY };

  beforeAll(async () => {
    await run('sh', [join(EXAMPLES, 'python/generate.sh'), stubs]);
  });

  it('documents the protoc command that generate.sh runs', () => {
    const command = readFileSync(join(EXAMPLES, 'python/generate.sh'), 'utf8')
      .split('\n')
      .find((line) => line.startsWith('protoc '))!;
    const documented = command.replaceAll('"$out"', 'gen');
    expect(readFileSync(join(EXAMPLES, 'python/README.md'), 'utf8')).toContain(documented);
    expect(existsSync(join(stubs, 'pushgate/v1/push_service_pb2_grpc.py'))).toBe(true);
  });

  it('push.py pushes to three sessions with an API key and prints every ack', async () => {
    const sockets = await nodeWithThreeSessions('81');
    const script = join(EXAMPLES, 'python/push.py');
    const args = ['--address', node.grpcAddress, '--message-id', 'py-1'];

    const { stdout } = await run(PYTHON, [script, ...args, '--json', '81', 'notice', '{"n": 1}'], { env, timeout: 20_000 });
    expectThreeAcks(JSON.parse(stdout) as PushJson, sockets, 'py-1');

    // A new message id: the same one again would be answered with the first push's result (idempotency).
    const second = ['--address', node.grpcAddress, '--message-id', 'py-2'];
    const table = await run(PYTHON, [script, ...second, '--client-type', 'web', '81', 'notice'], { env, timeout: 20_000 });
    expect(table.stdout.split('\n')[0]).toBe('message py-2: 1 acked, 0 timed out, 0 failed');
    expect(table.stdout).toContain(`${sockets[2]!.id}\tweb\tACKED\t`);

    const refused = await run(PYTHON, [script, ...args, '81', 'notice'], { env: { ...env, PUSHGATE_API_KEY: 'wrong' } }).catch((e) => e);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('PushToUser failed: UNAUTHENTICATED');
  });

  it('watch_presence.py prints the snapshot and the connects that follow as JSON lines', async () => {
    node = await startNode({ PUSHGATE_API_KEYS: `examples:push,read:${KEY}` });
    const early = await node.connect('82', 'app');
    const args = ['--address', node.grpcAddress, '--user', '82', '--snapshot', '--count', '4'];
    const child = spawn(PYTHON, [join(EXAMPLES, 'python/watch_presence.py'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));

    await waitFor(`the snapshot (stderr: ${stderr})`, () => stdout.includes('SNAPSHOT_COMPLETE'), { timeoutMs: 10_000 });
    const web = await node.connect('82', 'web');
    const pc = await node.connect('82', 'pc');

    expect(await exited).toBe(0);
    const events = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { kind: string; session?: { sessionId: string }; reason?: string; cursor: string });
    expect(events.map((e) => [e.kind.replace('PRESENCE_EVENT_KIND_', ''), e.session?.sessionId, e.reason])).toEqual([
      ['SESSION_CONNECTED', early.id, 'snapshot'],
      ['SNAPSHOT_COMPLETE', undefined, undefined],
      ['SESSION_CONNECTED', web.id, undefined],
      ['SESSION_CONNECTED', pc.id, undefined],
    ]);
    expect(events.every((e) => e.cursor !== '')).toBe(true);
  });
});

describe.skipIf(goMissing.length > 0)('examples/go', () => {
  const goWork = join(workDir, 'go');

  beforeAll(async () => {
    // The first build on a machine compiles Debian's grpc (about a minute); Go's cache makes later ones quick.
    await run('sh', [join(EXAMPLES, 'go/build.sh'), goWork], { timeout: 180_000 });
  }, 180_000);

  it('builds in GOPATH mode and pushes to three sessions with an API key', async () => {
    const sockets = await nodeWithThreeSessions('83');
    const push = join(goWork, 'bin/push');
    const args = ['-address', node.grpcAddress, '-api-key', KEY, '-message-id', 'go-1'];

    const { stdout } = await run(push, [...args, '-json', '83', 'notice', '{"n": 1, "lines": [1, 2]}'], { timeout: 20_000 });
    expectThreeAcks(JSON.parse(stdout) as PushJson, sockets, 'go-1');

    // A new message id: the same one again would be answered with the first push's result (idempotency).
    const second = ['-address', node.grpcAddress, '-api-key', KEY, '-message-id', 'go-2'];
    const table = await run(push, [...second, '-client-type', 'app', '83', 'notice'], { timeout: 20_000 });
    expect(table.stdout.split('\n')[0]).toBe('message go-2: 1 acked, 0 timed out, 0 failed');
    expect(table.stdout).toContain(`${sockets[0]!.id}\tapp\tACKED\t`);

    const refused = await run(push, ['-address', node.grpcAddress, '83', 'notice'], {
      env: { ...process.env, PUSHGATE_API_KEY: '' },
    }).catch((e) => e);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('PushToUser failed: Unauthenticated');
  });
});
