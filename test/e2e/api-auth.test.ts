import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import {
  type ClientDuplexStream,
  type ClientReadableStream,
  credentials,
  loadPackageDefinition,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  DisconnectSessionsRequest,
  ListSessionsRequest,
  PushServiceClient,
  PushToUserRequest,
  type WatchPresenceResponse,
} from '../../src/gen/pushgate/v1/push_service.js';
import { createLogger } from '../../src/logger.js';
import { startNode, type TestNode } from '../support/node.js';

/**
 * Callers of the gRPC API prove who they are with an API key (`authorization: Bearer <key>`), and
 * each key's scopes decide which methods it may call: push → PushToUser, read → ListSessions and
 * WatchPresence, admin → DisconnectSessions. Real nodes, real grpc-js clients, keys from a file.
 */

const dir = mkdtempSync(join(tmpdir(), 'pushgate-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const key = (): string => randomBytes(24).toString('base64url');
const KEYS = { billing: key(), reader: key(), ops: key(), hashed: key(), rotatedOld: key(), rotatedNew: key() };
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

function keysFile(lines: readonly string[]): string {
  const path = join(dir, `keys-${randomBytes(4).toString('hex')}.txt`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

const ALL_KEYS = [
  '# name:scopes:key',
  `billing:push:${KEYS.billing}`,
  `reader:read:${KEYS.reader}`,
  `ops:admin,read:${KEYS.ops}`,
  `hashed:push:sha256:${sha256(KEYS.hashed)}`,
  `rotated:push:${KEYS.rotatedOld}`,
  `rotated:push:${KEYS.rotatedNew}`,
];

const nodes: TestNode[] = [];
const clients: PushServiceClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(nodes.splice(0).map((node) => node.stop()));
});

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** A node with these keys, whose log lines the test can read. */
async function nodeWith(
  keyLines: readonly string[],
  env: Record<string, string> = {},
): Promise<{ node: TestNode; logs: LogLine[]; file: string }> {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as LogLine);
      callback();
    },
  });
  const file = keysFile(keyLines);
  const node = await startNode({ PUSHGATE_API_KEYS_FILE: file, ...env }, createLogger('info', sink));
  nodes.push(node);
  return { node, logs, file };
}

function client(node: TestNode): PushServiceClient {
  const raw = new PushServiceClient(node.grpcAddress, credentials.createInsecure());
  clients.push(raw);
  return raw;
}

function auth(secret: string | undefined, extra: Record<string, string> = {}): Metadata {
  const metadata = new Metadata();
  if (secret !== undefined) metadata.set('authorization', `Bearer ${secret}`);
  for (const [name, value] of Object.entries(extra)) metadata.set(name, value);
  return metadata;
}

type Method = 'PushToUser' | 'ListSessions' | 'WatchPresence' | 'DisconnectSessions';
const METHODS: readonly Method[] = ['PushToUser', 'ListSessions', 'WatchPresence', 'DisconnectSessions'];

/** Calls a method with the given metadata; resolves to OK or to the error's status, code and trailers. */
function call(
  raw: PushServiceClient,
  method: Method,
  metadata: Metadata,
): Promise<{ code: status; details: string; trailers: Metadata | undefined }> {
  const done = (err: ServiceError | null) => ({ code: err?.code ?? status.OK, details: err?.details ?? '', trailers: err?.metadata });
  return new Promise((resolve) => {
    switch (method) {
      case 'PushToUser':
        raw.pushToUser(PushToUserRequest.fromPartial({ userId: 'u-1', event: 'note', noAck: true }), metadata, (err) => resolve(done(err)));
        return;
      case 'ListSessions':
        raw.listSessions(ListSessionsRequest.fromPartial({ userId: 'u-1' }), metadata, (err) => resolve(done(err)));
        return;
      case 'DisconnectSessions':
        raw.disconnectSessions(DisconnectSessionsRequest.fromPartial({ userId: 'u-1' }), metadata, (err) => resolve(done(err)));
        return;
      case 'WatchPresence': {
        // A stream that is let in stays open: OK means it was admitted (and then cancelled here).
        const stream: ClientReadableStream<WatchPresenceResponse> = raw.watchPresence(
          { userIds: [], includeSnapshot: true, resumeAfter: '', maxEventsPerMessage: 0 },
          metadata,
        );
        stream.on('data', () => {
          stream.cancel();
          resolve({ code: status.OK, details: '', trailers: undefined });
        });
        stream.on('error', (err: ServiceError) => {
          if (err.code !== status.CANCELLED) resolve(done(err));
        });
        return;
      }
    }
  });
}

describe('API keys', () => {
  it('refuses every method without a key with UNAUTHENTICATED, naming the header to send and no key', async () => {
    const { node } = await nodeWith(ALL_KEYS);
    const raw = client(node);
    for (const method of METHODS) {
      const result = await call(raw, method, auth(undefined));
      expect(result.code, method).toBe(status.UNAUTHENTICATED);
      expect(result.details).toContain('authorization: Bearer');
      expect(result.trailers?.get('pushgate-error-code')).toEqual(['unauthenticated']);
      expect(result.trailers?.get('x-request-id')).toHaveLength(1);
      for (const name of ['billing', 'reader', 'ops', 'hashed', 'rotated']) expect(result.details).not.toContain(name);
    }
  });

  it('refuses a wrong key and a malformed header on every method alike, revealing nothing about the keys', async () => {
    const { node } = await nodeWith(ALL_KEYS);
    const raw = client(node);
    const answers = new Set<string>();
    for (const method of METHODS) {
      for (const metadata of [auth(key()), auth(`${KEYS.billing}x`), auth(KEYS.billing.slice(0, -1))]) {
        const result = await call(raw, method, metadata);
        expect(result.code, method).toBe(status.UNAUTHENTICATED);
        answers.add(result.details);
      }
      const basic = new Metadata();
      basic.set('authorization', `Basic ${KEYS.billing}`);
      const result = await call(raw, method, basic);
      expect(result.code).toBe(status.UNAUTHENTICATED);
      answers.add(result.details);
    }
    expect([...answers]).toEqual(['the API key was not accepted']);
  });

  it('lets each key call exactly the methods of its scopes, and refuses the rest with PERMISSION_DENIED', async () => {
    const { node } = await nodeWith(ALL_KEYS);
    const raw = client(node);
    const allowed: Record<string, readonly Method[]> = {
      billing: ['PushToUser'],
      reader: ['ListSessions', 'WatchPresence'],
      ops: ['ListSessions', 'WatchPresence', 'DisconnectSessions'],
      hashed: ['PushToUser'],
    };
    for (const [name, methods] of Object.entries(allowed)) {
      for (const method of METHODS) {
        const result = await call(raw, method, auth(KEYS[name as keyof typeof KEYS]));
        if (methods.includes(method)) {
          expect(result.code, `${name} ${method}`).toBe(status.OK);
        } else {
          expect(result.code, `${name} ${method}`).toBe(status.PERMISSION_DENIED);
          expect(result.trailers?.get('pushgate-error-code')).toEqual(['permission_denied']);
          expect(result.details).toMatch(/needs the "(push|read|admin)" scope/);
        }
      }
    }
  });

  it('rotates without downtime: two keys of one caller both work; removing one (SIGHUP reload) revokes it at once', async () => {
    const { node, file, logs } = await nodeWith(ALL_KEYS);
    const raw = client(node);
    expect((await call(raw, 'PushToUser', auth(KEYS.rotatedOld))).code).toBe(status.OK);
    expect((await call(raw, 'PushToUser', auth(KEYS.rotatedNew))).code).toBe(status.OK);

    writeFileSync(file, `${ALL_KEYS.filter((line) => !line.includes(KEYS.rotatedOld)).join('\n')}\n`);
    node.app.reloadCredentials();

    expect((await call(raw, 'PushToUser', auth(KEYS.rotatedOld))).code).toBe(status.UNAUTHENTICATED);
    expect((await call(raw, 'PushToUser', auth(KEYS.rotatedNew))).code).toBe(status.OK);
    expect(logs.some((line) => line.msg === 'API keys reloaded' && line.keys === ALL_KEYS.length - 2)).toBe(true);

    // A broken file leaves the keys in force and says so.
    writeFileSync(file, 'not a key line\n');
    node.app.reloadCredentials();
    expect((await call(raw, 'PushToUser', auth(KEYS.rotatedNew))).code).toBe(status.OK);
    expect(logs.some((line) => line.level === 50 && line.msg.includes('previous keys stay in force'))).toBe(true);
  });

  it('logs refused calls as audit lines with the caller and method, never a key, and ignores a caller name the client sends', async () => {
    const { node, logs } = await nodeWith(ALL_KEYS);
    const raw = client(node);
    await call(raw, 'DisconnectSessions', auth(KEYS.billing, { 'pushgate-caller': 'ops', 'x-request-id': 'req-audit-1' }));
    await call(raw, 'PushToUser', auth(key(), { 'x-request-id': 'req-audit-2' }));

    const refused = logs.filter((line) => line.msg === 'call refused');
    expect(refused).toEqual([
      expect.objectContaining({
        level: 30,
        caller: 'billing',
        method: 'DisconnectSessions',
        userId: 'u-1',
        code: 'permission_denied',
        requestId: 'req-audit-1',
      }),
      expect.objectContaining({
        level: 30,
        caller: '',
        method: 'PushToUser',
        userId: 'u-1',
        code: 'unauthenticated',
        requestId: 'req-audit-2',
      }),
    ]);
    // A state-changing call is audited with its user and outcome.
    await call(raw, 'DisconnectSessions', auth(KEYS.ops, { 'x-request-id': 'req-audit-3' }));
    expect(logs.find((line) => line.msg === 'sessions disconnected')).toMatchObject({
      audit: true,
      caller: 'ops',
      method: 'DisconnectSessions',
      userId: 'u-1',
      outcome: 'ok',
      requestId: 'req-audit-3',
    });
    const text = JSON.stringify(logs);
    for (const secret of Object.values(KEYS)) expect(text).not.toContain(secret);
  });

  it('on an open API (no key configured) still ignores a caller name the client sends', async () => {
    const logs: LogLine[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as LogLine);
        callback();
      },
    });
    const node = await startNode({}, createLogger('info', sink));
    nodes.push(node);
    await call(client(node), 'DisconnectSessions', auth(undefined, { 'pushgate-caller': 'ops', 'x-request-id': 'req-open-1' }));
    expect(logs.find((line) => line.msg === 'sessions disconnected')).toMatchObject({ audit: true, caller: '', requestId: 'req-open-1' });
  });

  it('keeps health and reflection open by default, and puts them behind a key with PUSHGATE_GRPC_AUTH_HEALTH', async () => {
    const open = await nodeWith(ALL_KEYS);
    expect(await health(open.node, undefined)).toBe('SERVING');

    expect(await listServices(open.node, undefined)).toContain('pushgate.v1.PushService');

    const closed = await nodeWith(ALL_KEYS, { PUSHGATE_GRPC_AUTH_HEALTH: '1' });
    expect(await health(closed.node, undefined)).toBe(status.UNAUTHENTICATED);
    expect(await health(closed.node, KEYS.reader)).toBe('SERVING');
    expect(await listServices(closed.node, undefined)).toBe(status.UNAUTHENTICATED);
    expect(await listServices(closed.node, KEYS.billing)).toContain('pushgate.v1.PushService');
  });

  it('refuses every caller when the keys file holds no key, rather than opening the API', async () => {
    const { node } = await nodeWith(['# no keys yet']);
    for (const method of METHODS) expect((await call(client(node), method, auth(key()))).code, method).toBe(status.UNAUTHENTICATED);
  });

  it('without any key configured, serves callers on loopback as before', async () => {
    const node = await startNode();
    nodes.push(node);
    expect((await call(client(node), 'DisconnectSessions', new Metadata())).code).toBe(status.OK);
  });

  it('refuses to start with a keys file it cannot use, naming the file and the line, never the secret', async () => {
    const secret = key();
    const file = keysFile([`ok:push:${key()}`, `bad:push,fly:${secret}`]);
    const err = await startNode({ PUSHGATE_API_KEYS_FILE: file }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toContain('PUSHGATE_API_KEYS_FILE');
    expect(err?.message).toContain('key 2');
    expect(err?.message).toContain('"fly"');
    expect(err?.message).not.toContain(secret);
  });
});

interface HealthClient {
  check(request: { service: string }, metadata: Metadata, callback: (err: ServiceError | null, response: { status: string }) => void): void;
  close(): void;
}

/** The Health status, or the status code of its refusal. */
async function health(node: TestNode, secret: string | undefined): Promise<string | status> {
  const pkg = loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String })) as unknown as {
    grpc: { health: { v1: { Health: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => HealthClient } } };
  };
  const checker = new pkg.grpc.health.v1.Health(node.grpcAddress, credentials.createInsecure());
  try {
    return await new Promise((resolve) =>
      checker.check({ service: '' }, auth(secret), (err, response) => resolve(err === null ? response.status : err.code)),
    );
  } finally {
    checker.close();
  }
}

interface ReflectionClient {
  ServerReflectionInfo(metadata: Metadata): ClientDuplexStream<object, { list_services_response?: { service: { name: string }[] } }>;
  close(): void;
}

/** The services reflection lists, or the status code of its refusal. */
async function listServices(node: TestNode, secret: string | undefined): Promise<string[] | status> {
  const dir = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), '..', 'proto', 'grpc', 'reflection', 'v1');
  const pkg = loadPackageDefinition(loadSync(join(dir, 'reflection.proto'), { keepCase: true })) as unknown as {
    grpc: {
      reflection: {
        v1: { ServerReflection: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => ReflectionClient };
      };
    };
  };
  const reflection = new pkg.grpc.reflection.v1.ServerReflection(node.grpcAddress, credentials.createInsecure());
  try {
    return await new Promise((resolve) => {
      const stream = reflection.ServerReflectionInfo(auth(secret));
      stream.on('data', (response) => {
        resolve((response.list_services_response?.service ?? []).map((service: { name: string }) => service.name));
        stream.end();
      });
      stream.on('error', (err: ServiceError) => resolve(err.code));
      stream.write({ list_services: '' });
    });
  } finally {
    reflection.close();
  }
}
