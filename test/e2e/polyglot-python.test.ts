import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startNode, type TestNode } from '../support/node.js';

/**
 * Proof that the .proto contract serves backends in other languages: the stubs are generated
 * from proto/ with Debian's protoc and grpc_python_plugin, and a Python script pushes through
 * them. Missing tools fail the test (with the apt packages to install); they never skip it.
 */

// Async on purpose: the node under test runs in this process, so a synchronous child would block it.
const run = promisify(execFile);

const PROTO_DIR = fileURLToPath(new URL('../../proto', import.meta.url));
const PUSH_SCRIPT = fileURLToPath(new URL('./fixtures/push_to_user.py', import.meta.url));
// Another python3 may come first on PATH (pyenv); Debian's python3-grpcio belongs to this one.
const PYTHON = '/usr/bin/python3';
const PROTOC = '/usr/bin/protoc';
const GRPC_PYTHON_PLUGIN = '/usr/bin/grpc_python_plugin';
const WELL_KNOWN_INCLUDE = '/usr/include';

/** Each missing prerequisite with the Debian package that provides it. */
async function missingPrerequisites(): Promise<{ what: string; pkg: string }[]> {
  const missing: { what: string; pkg: string }[] = [];
  if (!existsSync(PROTOC)) missing.push({ what: PROTOC, pkg: 'protobuf-compiler' });
  if (!existsSync(GRPC_PYTHON_PLUGIN)) missing.push({ what: GRPC_PYTHON_PLUGIN, pkg: 'protobuf-compiler-grpc' });
  if (!existsSync(join(WELL_KNOWN_INCLUDE, 'google/protobuf/struct.proto'))) {
    missing.push({ what: `${WELL_KNOWN_INCLUDE}/google/protobuf/struct.proto`, pkg: 'libprotobuf-dev' });
  }
  if (!existsSync(PYTHON)) {
    missing.push({ what: PYTHON, pkg: 'python3' });
    return missing;
  }
  for (const [module, pkg] of [
    ['grpc', 'python3-grpcio'],
    ['google.protobuf', 'python3-protobuf'],
  ] as const) {
    try {
      await run(PYTHON, ['-c', `import ${module}`]);
    } catch {
      missing.push({ what: `Python module ${module} for ${PYTHON}`, pkg });
    }
  }
  return missing;
}

async function generatePythonStubs(outDir: string): Promise<void> {
  const protos = readdirSync(join(PROTO_DIR, 'pushgate/v1'))
    .filter((name) => name.endsWith('.proto'))
    .map((name) => `pushgate/v1/${name}`);
  await run(PROTOC, [
    `--proto_path=${PROTO_DIR}`,
    `--proto_path=${WELL_KNOWN_INCLUDE}`,
    `--python_out=${outDir}`,
    `--grpc_python_out=${outDir}`,
    `--plugin=protoc-gen-grpc_python=${GRPC_PYTHON_PLUGIN}`,
    ...protos,
  ]);
}

/** Runs the Python backend; resolves with its PushToUserResponse in proto3 JSON form. */
async function pushFromPython(stubsDir: string, args: string[]): Promise<PushToUserJson> {
  try {
    const { stdout } = await run(PYTHON, [PUSH_SCRIPT, ...args], {
      env: { ...process.env, PYTHONPATH: stubsDir, PYTHONDONTWRITEBYTECODE: '1' },
      timeout: 20_000,
    });
    return JSON.parse(stdout) as PushToUserJson;
  } catch (err) {
    const { stderr } = err as { stderr?: string };
    throw new Error(`the Python backend failed: ${(err as Error).message}\n${stderr ?? ''}`);
  }
}

/** PushToUserResponse as json_format.MessageToJson writes it: camelCase names, zero values left out. */
interface PushToUserJson {
  messageId: string;
  acked?: number;
  timedOut?: number;
  failed?: number;
  deliveries: {
    session: { sessionId: string; userId: string; clientType: string };
    status: string;
    latencyUs?: number;
    ackData?: unknown;
    error?: string;
  }[];
}

describe('a Python backend using the .proto contract', () => {
  let stubsDir: string;
  let node: TestNode;

  beforeAll(async () => {
    const missing = await missingPrerequisites();
    if (missing.length > 0) {
      const packages = [...new Set(missing.map((m) => m.pkg))].join(' ');
      throw new Error(
        `polyglot test prerequisites missing: ${missing.map((m) => m.what).join('; ')}. ` +
          `Install them with: apt-get update && apt-get install -y ${packages}`,
      );
    }
    stubsDir = mkdtempSync(join(tmpdir(), 'pushgate-python-'));
    await generatePythonStubs(stubsDir);
  });
  afterAll(() => {
    if (stubsDir !== undefined) rmSync(stubsDir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    node = await startNode();
  });
  afterEach(async () => {
    await node.stop();
  });

  it('pushes to the app, pc and web clients of a user and reads back each ack', async () => {
    const acks: Record<string, unknown> = {
      app: { device: 'app', battery: 0.8 },
      pc: { device: 'pc', os: 'linux', windows: 2 },
      web: { device: 'web', tabs: ['inbox', 'orders'] },
    };
    const received = new Map<string, unknown>();
    const clients = await Promise.all(
      Object.keys(acks).map(async (type) => {
        const socket = await node.connect('61', type);
        socket.on('notice', (data: unknown, ack: (reply: unknown) => void) => {
          received.set(type, data);
          ack(acks[type]);
        });
        return socket;
      }),
    );
    const data = { title: 'approve PO-7', amount: 12.5, urgent: true, lines: [1, 2], note: null };

    const response = await pushFromPython(stubsDir, [node.grpcAddress, '61', 'notice', JSON.stringify(data), 'py-msg-1']);

    expect(Object.fromEntries(received)).toEqual({ app: data, pc: data, web: data });
    expect(response.messageId).toBe('py-msg-1');
    expect(response.acked).toBe(3);
    expect(response.timedOut ?? 0).toBe(0);
    expect(response.failed ?? 0).toBe(0);
    expect(response.deliveries).toHaveLength(3);
    for (const delivery of response.deliveries) {
      expect(delivery.status).toBe('DELIVERY_STATUS_ACKED');
      expect(delivery.session.userId).toBe('61');
      expect(delivery.ackData).toEqual(acks[delivery.session.clientType]);
      expect(delivery.latencyUs).toBeGreaterThan(0);
    }
    expect(response.deliveries.map((d) => d.session.clientType).sort()).toEqual(['app', 'pc', 'web']);
    expect(new Set(response.deliveries.map((d) => d.session.sessionId))).toEqual(new Set(clients.map((c) => c.id)));
  });
});
