import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  type ChannelCredentials,
  type ClientDuplexStream,
  type ClientReadableStream,
  credentials,
  status as GrpcStatus,
  loadPackageDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { Socket } from 'socket.io-client';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEVICE_SCRIPT_FILE, DeviceScript } from '../../src/http/device-script.js';
import { startNode, type TestNode } from '../support/node.js';
import { connectClient, connectError } from '../support/socket-client.js';
import { signToken } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

const require = createRequire(import.meta.url);
/** The .proto files shipped inside @grpc/reflection (its main is build/src/index.js). */
const REFLECTION_PROTO_DIR = join(dirname(require.resolve('@grpc/reflection')), '..', 'proto', 'grpc', 'reflection');

const nodes: TestNode[] = [];
const closers: { close(): void }[] = [];

afterEach(async () => {
  for (const closer of closers.splice(0)) closer.close();
  await Promise.all(nodes.splice(0).map((node) => node.stop()));
});

async function node(env: Record<string, string> = {}): Promise<TestNode> {
  const started = await startNode(env);
  nodes.push(started);
  return started;
}

async function connect(httpUrl: string, token: string, clientType = 'web'): Promise<Socket> {
  const socket = await connectClient(httpUrl, { token, clientType });
  closers.push(socket);
  return socket;
}

// --- gRPC health and reflection clients, built from the shipped protos as grpcurl-like tools do ---

interface HealthClient {
  check(request: { service: string }, callback: (err: ServiceError | null, response: { status: string }) => void): void;
  watch(request: { service: string }): ClientReadableStream<{ status: string }>;
  close(): void;
}

function healthClient(address: string): HealthClient {
  const pkg = loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String })) as unknown as {
    grpc: { health: { v1: { Health: new (address: string, creds: ChannelCredentials) => HealthClient } } };
  };
  const client = new pkg.grpc.health.v1.Health(address, credentials.createInsecure());
  closers.push(client);
  return client;
}

function check(client: HealthClient, service: string): Promise<string> {
  return new Promise((resolve, reject) => client.check({ service }, (err, response) => (err ? reject(err) : resolve(response.status))));
}

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

interface ReflectionClient {
  ServerReflectionInfo(): ClientDuplexStream<object, ReflectionResponse>;
  close(): void;
}

/** Sends one request on a ServerReflectionInfo stream and returns the one response. */
function reflect(address: string, version: 'v1' | 'v1alpha', request: object): Promise<ReflectionResponse> {
  const definition = loadSync(join(REFLECTION_PROTO_DIR, version, 'reflection.proto'), {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
  });
  const pkg = loadPackageDefinition(definition) as unknown as {
    grpc: {
      reflection: Record<typeof version, { ServerReflection: new (address: string, creds: ChannelCredentials) => ReflectionClient }>;
    };
  };
  const client = new pkg.grpc.reflection[version].ServerReflection(address, credentials.createInsecure());
  closers.push(client);
  const call = client.ServerReflectionInfo();
  return new Promise((resolve, reject) => {
    call.on('data', (response: ReflectionResponse) => {
      resolve(response);
      call.end();
    });
    call.on('error', reject);
    call.write(request);
  });
}

describe('GET /dev/token', () => {
  it('in dev mode, mints a token (with the generated secret) that connects as the requested user', async () => {
    const n = await node({ PUSHGATE_DEV: '1', PUSHGATE_JWT_SECRET: '' });
    expect(n.app.config.auth.secretGenerated).toBe(true);

    const res = await fetch(`${n.httpUrl}/dev/token?user=61`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { token: string; userId: string; expiresInSeconds: number };
    expect(body.userId).toBe('61');
    expect(body.expiresInSeconds).toBeGreaterThan(0);
    expect(body.token.split('.')).toHaveLength(3);

    const socket = await connect(n.httpUrl, body.token);
    const { sessions } = await n.client.listSessions({ userId: '61' });
    expect(sessions.map((s) => [s.sessionId, s.userId])).toEqual([[socket.id, '61']]);
  });

  it('mints tokens another dev node (with its own generated secret) refuses', async () => {
    const [a, b] = await Promise.all([
      node({ PUSHGATE_DEV: '1', PUSHGATE_JWT_SECRET: '' }),
      node({ PUSHGATE_DEV: '1', PUSHGATE_JWT_SECRET: '' }),
    ]);
    const { token } = (await (await fetch(`${a.httpUrl}/dev/token?user=61`)).json()) as { token: string };
    const refused = await connectError(b.httpUrl, { token, clientType: 'web' });
    expect(refused.code).toBe('token_signature_invalid');
  });

  it('is refused with 403 and a JSON error when dev mode is off', async () => {
    const n = await node();
    const res = await fetch(`${n.httpUrl}/dev/token?user=61`);
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('dev_mode_disabled');
    expect(body.error.message).toContain('PUSHGATE_DEV');
    expect(JSON.stringify(body)).not.toMatch(/eyJ/); // no token in the refusal
  });

  it('asks for the user id when it is missing', async () => {
    const n = await node({ PUSHGATE_DEV: '1' });
    const res = await fetch(`${n.httpUrl}/dev/token`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error).toMatchObject({ code: 'invalid_argument' });
    expect(body.error.message).toContain('user');
  });

  it('cannot mint when tokens are verified with a public key', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const n = await node({
      PUSHGATE_DEV: '1',
      PUSHGATE_JWT_SECRET: '',
      PUSHGATE_JWT_PUBLIC_KEY: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    });
    const res = await fetch(`${n.httpUrl}/dev/token?user=61`);
    expect(res.status).toBe(409);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('dev_mode_disabled');
    expect(body.error.message).toContain('PUSHGATE_JWT_PUBLIC_KEY');
  });
});

describe('HTTP routes', () => {
  it('GET /healthz reports alive and GET /readyz ready, with the node id', async () => {
    const n = await node();
    const res = await fetch(`${n.httpUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'alive', nodeId: n.app.config.server.nodeId });
    const ready = await fetch(`${n.httpUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ok', reasons: [], nodeId: n.app.config.server.nodeId });
  });

  it('GET / serves the HTML demo page when enabled, and the Socket.IO client script it loads is served', async () => {
    const n = await node({ PUSHGATE_DEMO_PAGE: 'true' });
    const res = await fetch(`${n.httpUrl}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toMatch(/^<!doctype html>/i);
    expect(html).toMatch(/<\/html>\s*$/);
    expect(html).toContain('/socket.io/socket.io.js');
    // The grpcurl command targets this node's real gRPC port, on the host the browser used.
    expect(html).toContain(`127.0.0.1:${n.app.boundPorts.grpcPort}`);

    const script = await fetch(`${n.httpUrl}/socket.io/socket.io.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect((await script.text()).length).toBeGreaterThan(1000);
  });

  it('answers unknown paths with 404 and other methods with 405, both as JSON', async () => {
    const n = await node();
    const missing = await fetch(`${n.httpUrl}/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('not_found');
    const post = await fetch(`${n.httpUrl}/dev/token?user=61`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(((await post.json()) as { error: { message: string } }).error.message).toContain('POST');
  });
});

describe('GET /device.js', () => {
  // `npm run build` makes it; only the device package is built here when it is missing (the root
  // build would rewrite dist/ under other test files).
  beforeAll(async () => {
    if (existsSync(DEVICE_SCRIPT_FILE)) return;
    const root = fileURLToPath(new URL('../../', import.meta.url));
    await promisify(execFile)('npx', ['tsc', '-p', 'packages/device/tsconfig.json'], { cwd: root, timeout: 60_000 });
  }, 60_000);

  it('serves the device library’s browser build on any node, demo page or not, to pages on any site', async () => {
    const n = await node();
    expect((await fetch(`${n.httpUrl}/`)).status).toBe(404); // no demo page on this node
    const res = await fetch(`${n.httpUrl}/device.js`, { headers: { origin: 'https://app.example.com' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(res.headers.get('cache-control')).toMatch(/^public, max-age=\d+$/);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const body = await res.text();
    expect(body).toBe(readFileSync(DEVICE_SCRIPT_FILE, 'utf8'));
    expect(body).toContain('export function connect(');
    // An ES module that loads nothing: it runs next to /socket.io/socket.io.js without a bundler.
    expect(body).not.toMatch(/^\s*import\s/m);
    const head = await fetch(`${n.httpUrl}/device.js`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('answers 404 with a plain message naming the build when the file is not built', async () => {
    const missing = new DeviceScript(new URL('./no-such-dir/core.js', import.meta.url));
    const server = createServer((_req, res) => void missing.send(res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push({ close: () => server.close() });
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/device.js`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toContain('run `npm run build`');
  });
});

describe('the demo page', () => {
  async function demo(n: TestNode): Promise<{ status: number; type: string | null; body: string }> {
    const res = await fetch(`${n.httpUrl}/`);
    return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
  }

  it('is not served by a production node: GET / is 404 like any unknown route', async () => {
    const n = await node();
    const page = await demo(n);
    expect(page.status).toBe(404);
    expect(page.type).toMatch(/^application\/json/);
    expect(JSON.parse(page.body)).toMatchObject({ error: { code: 'not_found' } });
    expect(page.body).not.toContain('pushgate demo');
  });

  it('is served by a production node with PUSHGATE_DEMO_PAGE, in paste-a-token mode', async () => {
    const n = await node({ PUSHGATE_DEMO_PAGE: 'true' });
    const page = await demo(n);
    expect(page.status).toBe(200);
    expect(page.type).toMatch(/^text\/html/);
    expect(page.body).toContain('<title>pushgate demo</title>');
    expect(page.body).toContain('not in development mode');
  });

  it('is served in development mode without the setting', async () => {
    const n = await node({ PUSHGATE_DEV: '1' });
    const page = await demo(n);
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>pushgate demo</title>');
    expect(page.body).toContain('Development mode');
  });
});

describe('CORS for browsers on other sites', () => {
  /** The CORS header a browser on `origin` would get on Socket.IO's long-polling handshake. */
  async function allowedOrigin(n: TestNode, origin: string): Promise<string | null> {
    const res = await fetch(`${n.httpUrl}/socket.io/?EIO=4&transport=polling`, { headers: { origin } });
    await res.text();
    return res.headers.get('access-control-allow-origin');
  }

  it('allows no other origin by default', async () => {
    const n = await node();
    expect(await allowedOrigin(n, 'https://app.example.com')).toBeNull();
  });

  it('allows exactly the origins in PUSHGATE_CORS_ORIGINS', async () => {
    const n = await node({ PUSHGATE_CORS_ORIGINS: 'https://app.example.com,https://admin.example.com' });
    expect(await allowedOrigin(n, 'https://app.example.com')).toBe('https://app.example.com');
    expect(await allowedOrigin(n, 'https://admin.example.com')).toBe('https://admin.example.com');
    expect(await allowedOrigin(n, 'https://evil.example.net')).toBeNull();
  });
});

describe('gRPC health', () => {
  it('reports SERVING for the server and for pushgate.v1.PushService', async () => {
    const n = await node();
    const health = healthClient(n.grpcAddress);
    expect(await check(health, '')).toBe('SERVING');
    expect(await check(health, 'pushgate.v1.PushService')).toBe('SERVING');
    const unknown = await check(health, 'no.such.Service').then(
      () => undefined,
      (err: ServiceError) => err.code,
    );
    expect(unknown).toBe(GrpcStatus.NOT_FOUND);
  });

  it('turns NOT_SERVING (and /readyz 503, /healthz still 200) as soon as stop() begins draining', async () => {
    const n = await node();
    const health = healthClient(n.grpcAddress);
    const seen: string[] = [];
    const watch = health.watch({ service: 'pushgate.v1.PushService' });
    watch.on('data', (update: { status: string }) => seen.push(update.status));
    watch.on('error', () => {}); // cancelled below
    await waitFor('the first health update', () => seen.length > 0);
    expect(seen).toEqual(['SERVING']);

    // An unacked push keeps the drain open long enough to look at the node while it drains.
    const socket = await connect(n.httpUrl, await signToken('61'));
    let ack: ((reply: unknown) => void) | undefined;
    socket.on('notice', (_data: unknown, reply: (r: unknown) => void) => {
      ack = reply;
    });
    const pushed = n.client.pushToUser({ userId: '61', event: 'notice', data: 1, ackTimeoutMs: 10_000 });
    await waitFor('the push to reach the client', () => ack);

    const stopped = n.app.stop();
    await waitFor('NOT_SERVING on the health watch', () => seen.includes('NOT_SERVING'));
    const readyz = await fetch(`${n.httpUrl}/readyz`);
    expect(readyz.status).toBe(503);
    expect(await readyz.json()).toMatchObject({ status: 'draining', reasons: ['draining'] });
    // Alive while draining: a liveness probe must not cut the drain short.
    const healthz = await fetch(`${n.httpUrl}/healthz`);
    expect(healthz.status).toBe(200);
    expect(await healthz.json()).toMatchObject({ status: 'alive' });

    watch.cancel();
    ack!({ ok: true });
    expect((await pushed).acked).toBe(1);
    await stopped;
  });
});

describe('gRPC server reflection', () => {
  it.each(['v1', 'v1alpha'] as const)('%s lists pushgate.v1.PushService and grpc.health.v1.Health', async (version) => {
    const n = await node();
    const response = await reflect(n.grpcAddress, version, { list_services: '' });
    const names = response.list_services_response!.service.map((s) => s.name);
    expect(names).toContain('pushgate.v1.PushService');
    expect(names).toContain('grpc.health.v1.Health');
  });

  it('describes PushService so grpcurl can call it without the .proto files', async () => {
    const n = await node();
    const response = await reflect(n.grpcAddress, 'v1', { file_containing_symbol: 'pushgate.v1.PushService' });
    expect(response.error_response).toBeUndefined();
    const files = response.file_descriptor_response!.file_descriptor_proto;
    expect(files.length).toBeGreaterThan(0);
    const text = Buffer.concat(files).toString('latin1');
    expect(text).toContain('PushService');
    expect(text).toContain('PushToUser');
  });
});
