import { createHook } from 'node:async_hooks';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  type CallOptions,
  credentials,
  Client as GrpcClient,
  status as GrpcStatus,
  Metadata,
  type ServiceError,
  type StatusObject,
} from '@grpc/grpc-js';
import fc from 'fast-check';
import type { Logger } from 'pino';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { PresenceEvent } from '../../src/domain/presence.js';
import { ERROR_CODES } from '../../src/errors.js';
import {
  DeliveryStatus,
  DisconnectSessionsRequest,
  ListSessionsRequest,
  PushToUserRequest,
  PushToUsersRequest,
  WatchPresenceRequest,
  type WatchPresenceResponse,
} from '../../src/gen/pushgate/v1/push_service.js';
import { createLogger } from '../../src/logger.js';
import { TestPushClient } from '../support/grpc-client.js';
import { startNode, type TestNode } from '../support/node.js';
import { signToken, TEST_SECRET } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

/**
 * A seeded, time-bounded fuzz of one running node: random websocket frames and Socket.IO packets,
 * random handshakes, random gRPC requests (typed and raw bytes). Each phase checks what must hold
 * for every input (a valid client still connects, a push still reports each session, no gRPC call
 * ends INTERNAL or UNKNOWN); the last test checks the node afterwards: a normal push is ACKED, and
 * no session, presence subscriber, pending ack, handle or memory is left over.
 *
 * FUZZ_SEED=<n> replays a run (the seed is printed); FUZZ_MS=<ms> runs longer than the CI budget.
 * Phase n (1 raw frames, 2 handshakes, 3 gRPC) runs fast-check with seed FUZZ_SEED + n, which is the
 * seed a failure report shows. A replay meets the same inputs; the node's timing may differ.
 */

const SEED = envInt('FUZZ_SEED') ?? Math.floor(Math.random() * 2 ** 31);
const BUDGET_MS = envInt('FUZZ_MS') ?? 20_000;
/** Each phase's share of the budget. */
const RAW_MS = Math.round(BUDGET_MS * 0.4);
const HANDSHAKE_MS = Math.round(BUDGET_MS * 0.25);
const GRPC_MS = BUDGET_MS - RAW_MS - HANDSHAKE_MS;
/** How long the node may take to answer one client step (open, CONNECT, handshake) on a busy machine. */
const ANSWER_MS = 5000;
/** Slack for a phase's last run and its clean-up, on top of its share. */
const PHASE_SLACK_MS = 20_000;

/** Bounds for the node afterwards, against the baseline taken after a warm-up. */
const MAX_EXTRA_HANDLES = 4;
const MAX_HEAP_GROWTH_BYTES = 32 * 1024 * 1024;

function envInt(name: string): number | undefined {
  const value = process.env[name];
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value)) throw new Error(`${name} must be a whole number, got "${value}"`);
  return Number(value);
}

// --- the node, what it logs, and what the fuzz leaves behind ---

let node: TestNode;
/** Log lines at warn and above, parsed. */
const logged: { level: number; msg: string; err?: { message?: string; stack?: string } }[] = [];
/** Every user id a fuzz client connected as (as the node recorded it), to look up afterwards. */
const fuzzedUsers = new Set<string>();
/** Sessions the presence feed reports live, by id, minus the warm-up's: zero once everything closed. */
const liveSessions = new Set<string>();
let unsubscribeFeed: (() => void) | undefined;
let baseline: { handles: Map<string, number>; heapUsed: number } | undefined;
/** gRPC status codes seen, by name, and Socket.IO outcomes seen: printed as the run's figures. */
const grpcCodes = new Map<string, number>();
const handshakeOutcomes = new Map<string, number>();
const rawOutcomes = new Map<string, number>();
const deliveries = new Map<string, number>();
/** What the fuzz has open right now: closed by the test that opened it, or at the end should that fail. */
const open = new Set<{ close(): void }>();

/** Where the node's own code lives: a pending timer made from there after the fuzz is a leak. */
const SRC_DIR = fileURLToPath(new URL('../../src/', import.meta.url));

/** Timers created since the baseline and still pending, with the stack that made each. */
const pendingTimers = new Map<number, { readonly resource: { _onTimeout?: unknown; _idleTimeout?: number }; readonly stack: string }>();
const timerHook = createHook({
  init(id, type, _trigger, resource) {
    if (type !== 'Timeout') return;
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 40;
    pendingTimers.set(id, { resource: resource as object, stack: new Error().stack ?? '' });
    Error.stackTraceLimit = limit;
  },
  destroy(id) {
    pendingTimers.delete(id);
  },
});

/** Pending timers the node's code set since the baseline: each as its delay, callback and first frames in src/. */
function projectTimers(): string[] {
  return [...pendingTimers.values()]
    .filter(({ stack }) => stack.includes(SRC_DIR))
    .map(({ resource, stack }) => {
      const frames = stack
        .split('\n')
        .filter((line) => line.includes(SRC_DIR))
        .slice(0, 4)
        .map((line) => line.trim().replace(SRC_DIR, 'src/'))
        .join(' ← ');
      return `${resource._idleTimeout} ms timer ${String(resource._onTimeout).slice(0, 60).replace(/\s+/g, ' ')} set ${frames}`;
    });
}

function count(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function captureLogger(): Logger {
  return createLogger('warn', {
    write(line: string) {
      logged.push(JSON.parse(line));
    },
  });
}

const gc: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

function activeHandles(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

/** Resource kinds with more entries than in `base`, and by how many. */
function handleGrowth(base: Map<string, number>, now: Map<string, number>): Record<string, number> {
  const growth: Record<string, number> = {};
  for (const [kind, n] of now) if (n > (base.get(kind) ?? 0)) growth[kind] = n - (base.get(kind) ?? 0);
  return growth;
}

function total(growth: Record<string, number>): number {
  return Object.values(growth).reduce((a, b) => a + b, 0);
}

/** The fast-check settings of one phase: its own seed (derived from SEED), stopped by time, not by count. */
function runFor(phase: number, ms: number): fc.Parameters<unknown> {
  return { seed: SEED + phase, numRuns: 1_000_000, interruptAfterTimeLimit: ms, markInterruptAsFailure: false };
}

/** Resolves when `check` holds (true) or once `ms` passed (false); checked every 5 ms. */
async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}

beforeAll(async () => {
  console.log(`fuzz: seed ${SEED}, ${BUDGET_MS} ms (replay with FUZZ_SEED=${SEED}; FUZZ_MS=<ms> for a longer run)`);
  node = await startNode({}, captureLogger());
  // Warm-up: the node's own gRPC channel and one client round trip, so the baseline counts them.
  await node.client.listSessions({ userId: 'warm-up' });
  const warm = await node.connect('warm-up', 'web');
  warm.close();
  await waitFor('the warm-up session to leave', () => node.app.local.size === 0);
  unsubscribeFeed = node.app.registry.subscribe((event: PresenceEvent) => {
    const id = event.session?.sessionId;
    if (id === undefined) return;
    if (event.kind === 'session_connected') liveSessions.add(id);
    if (event.kind === 'session_disconnected') liveSessions.delete(id);
  });
  baseline = { handles: activeHandles(), heapUsed: heapUsed() };
  timerHook.enable();
});

afterAll(async () => {
  timerHook.disable();
  unsubscribeFeed?.();
  for (const closer of open) closer.close();
  open.clear();
  await node?.stop();
  console.log(
    `fuzz figures (seed ${SEED}): raw ${JSON.stringify(Object.fromEntries(rawOutcomes))}; ` +
      `handshakes ${JSON.stringify(Object.fromEntries(handshakeOutcomes))}; gRPC ${JSON.stringify(Object.fromEntries(grpcCodes))}; ` +
      `push deliveries ${JSON.stringify(Object.fromEntries(deliveries))}; ` +
      `warnings ${logged.filter((l) => l.level === 40).length}`,
  );
});

// --- arbitraries shared by the phases ---

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code));
/** Mostly ASCII an id would hold, some of any code point, some lone UTF-16 surrogates. */
const unit = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...'abcxyz019-_:./ @"\\{}[]') },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: loneSurrogate },
);
function anyString(maxLength: number): fc.Arbitrary<string> {
  return fc.string({ unit, maxLength });
}
/** A large string, shrinking towards its smallest size. */
function hugeString(min: number, max: number): fc.Arbitrary<string> {
  return fc.integer({ min, max }).map((n) => 'x'.repeat(n));
}
const printable = fc.string({ unit: 'binary-ascii', maxLength: 200 }).map((s) => s.replace(/[^\x20-\x7e]/g, 'a'));
const json = fc.jsonValue({ maxDepth: 4 });

/** A JSON text nested `depth` levels deep, as arrays or objects. */
function deepJson(depth: number, objects: boolean): string {
  return objects ? `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}` : `${'['.repeat(depth)}${']'.repeat(depth)}`;
}
const deep = fc.record({ depth: fc.integer({ min: 20, max: 20_000 }), objects: fc.boolean() });

/** A JWT-shaped string signed HS256 by hand, so the claims can be anything at all. */
function hs256(header: unknown, payload: unknown, secret = TEST_SECRET): string {
  const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value) ?? 'null').toString('base64url');
  const body = `${b64(header)}.${b64(payload)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

/** How a fuzz client's token is made: a recipe, resolved when the run starts (signing is async). */
type TokenRecipe =
  | { readonly kind: 'valid' }
  | { readonly kind: 'valid-for'; readonly sub: string }
  | { readonly kind: 'other-secret' | 'expired' | 'no-exp' }
  | { readonly kind: 'claims'; readonly header: unknown; readonly payload: unknown; readonly signed: boolean }
  | { readonly kind: 'value'; readonly value: unknown };

const tokenRecipe: fc.Arbitrary<TokenRecipe> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'valid' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('valid-for' as const), sub: fc.oneof(anyString(80), hugeString(100, 20_000)) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('other-secret' as const, 'expired' as const, 'no-exp' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('claims' as const),
      header: fc.oneof(
        fc.constant({ alg: 'HS256' }),
        fc.record({ alg: fc.constantFrom('none', 'HS512', 'RS256', 'hs256', ''), typ: anyString(5) }),
        json,
      ),
      payload: fc.oneof(
        fc.record(
          {
            sub: fc.oneof(anyString(40), json),
            exp: fc.oneof(fc.integer(), fc.double(), json, fc.constant(Math.floor(Date.now() / 1000) + 3600)),
            iat: fc.oneof(fc.integer(), json),
            nbf: fc.oneof(fc.integer(), json),
            iss: anyString(20),
            aud: fc.oneof(anyString(20), fc.array(anyString(10))),
          },
          { requiredKeys: [] },
        ),
        json,
      ),
      signed: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('value' as const), value: fc.oneof(anyString(300), hugeString(1000, 300_000), json) }),
  },
);

async function tokenFrom(recipe: TokenRecipe, userId: string): Promise<unknown> {
  switch (recipe.kind) {
    case 'valid':
      return signToken(userId);
    case 'valid-for':
      return signToken(recipe.sub);
    case 'other-secret':
      return signToken(userId, { secret: 'another-secret-that-is-at-least-32-characters' });
    case 'expired':
      return signToken(userId, { expiresIn: -60 });
    case 'no-exp':
      return signToken(userId, { expiresIn: null });
    case 'claims':
      return recipe.signed
        ? hs256(recipe.header, recipe.payload)
        : `${hs256(recipe.header, recipe.payload).split('.').slice(0, 2).join('.')}.`;
    case 'value':
      return recipe.value;
  }
}

const clientType = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('web', 'app', 'pc') },
  { weight: 1, arbitrary: fc.constantFrom('WEB', ' app ', 'kiosk', '') },
  { weight: 2, arbitrary: anyString(40) },
  { weight: 1, arbitrary: json },
);

// --- (a) raw websocket frames and Socket.IO packets ---

/** One thing a raw client sends; `ack` targets the id of the push the server sent it (plus `delta`). */
type RawPacket =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array; readonly asText: boolean }
  | {
      readonly kind: 'sio';
      readonly eio: string;
      readonly type: string;
      readonly attachments: string;
      readonly nsp: string;
      readonly id: string;
      readonly body: string;
    }
  | { readonly kind: 'event'; readonly id: number | undefined; readonly name: string; readonly args: readonly unknown[] }
  | { readonly kind: 'refresh'; readonly id: number | undefined; readonly token: TokenRecipe }
  | { readonly kind: 'ack'; readonly delta: number; readonly args: readonly unknown[] }
  | { readonly kind: 'binary-ack'; readonly delta: number; readonly num: number; readonly attachment: Uint8Array | undefined }
  | { readonly kind: 'deep'; readonly prefix: string; readonly depth: number; readonly objects: boolean };

const rawPacket: fc.Arbitrary<RawPacket> = fc.oneof(
  fc.record({ kind: fc.constant('text' as const), text: fc.oneof(anyString(200), fc.string({ unit: 'binary', maxLength: 50 })) }),
  fc.record({ kind: fc.constant('bytes' as const), bytes: fc.uint8Array({ maxLength: 300 }), asText: fc.boolean() }),
  fc.record({
    kind: fc.constant('sio' as const),
    eio: fc.constantFrom('4', '4', '4', '0', '1', '2', '3', '5', '6', '7', 'b', ''),
    type: fc.oneof(fc.constantFrom('0', '1', '2', '3', '4', '5', '6'), fc.constantFrom('7', '9', 'x', '', '22')),
    attachments: fc.oneof(
      fc.constant(''),
      fc.nat(5).map((n) => `${n}-`),
      fc.constantFrom('-', '99999999999999999999-', '1'),
    ),
    nsp: fc.oneof(
      fc.constant(''),
      fc.constantFrom('/,', '/admin,', '/socket.io,', ','),
      anyString(20).map((s) => `/${s},`),
    ),
    id: fc.oneof(fc.constant(''), fc.nat().map(String), fc.constantFrom('0', '-1', '1e5', '99999999999999999999999')),
    body: fc.oneof(
      json.map((v) => JSON.stringify(v)),
      fc.array(json, { maxLength: 4 }).map((v) => JSON.stringify(v)),
      anyString(100),
      fc.constantFrom('["connect"]', '["disconnect"]', '["__proto__",{}]', '[{"_placeholder":true,"num":0}]', '{"token":1}', 'null'),
    ),
  }),
  fc.record({
    kind: fc.constant('event' as const),
    id: fc.option(fc.nat(1000), { nil: undefined }),
    name: fc.oneof(
      fc.constantFrom(
        'pushgate:disconnect',
        'connect',
        'disconnect',
        'disconnecting',
        'error',
        'newListener',
        '__proto__',
        'constructor',
        'toString',
      ),
      anyString(30),
    ),
    args: fc.array(json, { maxLength: 3 }),
  }),
  fc.record({ kind: fc.constant('refresh' as const), id: fc.option(fc.nat(1000), { nil: undefined }), token: tokenRecipe }),
  fc.record({
    kind: fc.constant('ack' as const),
    delta: mostly(fc.constant(0), fc.integer({ min: -2, max: 2 })),
    args: fc.array(
      fc.oneof(
        { weight: 4, arbitrary: json },
        { weight: 1, arbitrary: anyString(100) },
        { weight: 1, arbitrary: fc.integer({ min: 20, max: 3000 }).map(nestedArray) },
        { weight: 1, arbitrary: hugeString(10_000, 900_000) },
      ),
      { maxLength: 3 },
    ),
  }),
  fc.record({
    kind: fc.constant('binary-ack' as const),
    delta: fc.integer({ min: -1, max: 1 }),
    num: fc.integer({ min: -1, max: 3 }),
    attachment: fc.option(fc.uint8Array({ maxLength: 2000 }), { nil: undefined }),
  }),
  fc.record({
    kind: fc.constant('deep' as const),
    prefix: fc.constantFrom('42', '42["e",', '43', '40', '451-'),
    depth: deep.map((d) => d.depth),
    objects: fc.boolean(),
  }),
);

interface RawScenario {
  readonly query: string;
  readonly authenticate: boolean;
  readonly clientType: string;
  readonly push: { readonly noAck: boolean; readonly ackTimeoutMs: number; readonly data: unknown } | null;
  readonly packets: readonly RawPacket[];
  readonly ending: 'close' | 'terminate' | 'namespace-disconnect';
}

const rawScenario: fc.Arbitrary<RawScenario> = fc.record({
  query: fc.oneof(
    { weight: 8, arbitrary: fc.constant('EIO=4&transport=websocket') },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        'EIO=3&transport=websocket',
        'EIO=5&transport=websocket',
        'transport=websocket',
        'EIO=4&transport=polling',
      ),
    },
    { weight: 1, arbitrary: printable.map((s) => `EIO=4&transport=websocket&sid=${encodeURIComponent(s)}`) },
  ),
  authenticate: fc.boolean(),
  clientType: fc.constantFrom('web', 'app', 'pc'),
  push: fc.option(
    fc.record({
      noAck: fc.boolean(),
      ackTimeoutMs: fc.integer({ min: 20, max: 400 }),
      data: fc.oneof(json, anyString(50)),
    }),
  ),
  packets: fc.array(rawPacket, { maxLength: 8 }),
  ending: fc.constantFrom('close', 'terminate', 'namespace-disconnect'),
});

/** A raw engine.io client: every message it received, and whether its connection has closed. */
class RawClient {
  readonly texts: string[] = [];
  closed = false;
  opened = false;

  constructor(readonly ws: WebSocket) {
    ws.on('open', () => (this.opened = true));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) this.texts.push(data.toString());
    });
    ws.on('close', () => (this.closed = true));
    // A refused upgrade or a reset connection ends in 'close' too.
    ws.on('error', () => {});
  }

  find(match: (text: string) => boolean): string | undefined {
    return this.texts.find(match);
  }

  send(data: string | Uint8Array, binary = typeof data !== 'string'): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(data, { binary });
  }
}

/** The id of the last event the server sent this client with an ack id (`42<id>[...]`). */
function lastServerAckId(client: RawClient): number | undefined {
  for (let i = client.texts.length - 1; i >= 0; i--) {
    const match = /^42(\d+)\[/.exec(client.texts[i]!);
    if (match) return Number(match[1]);
  }
  return undefined;
}

async function sendRaw(client: RawClient, packet: RawPacket, userId: string): Promise<void> {
  const ackId = (delta: number): number => Math.max(0, (lastServerAckId(client) ?? 0) + delta);
  switch (packet.kind) {
    case 'text':
      return client.send(packet.text);
    case 'bytes':
      // As a text frame these bytes are usually not UTF-8: the server must refuse the frame, not crash.
      return client.send(packet.bytes, !packet.asText);
    case 'sio':
      return client.send(`${packet.eio}${packet.type}${packet.attachments}${packet.nsp}${packet.id}${packet.body}`);
    case 'event':
      return client.send(`42${packet.id ?? ''}${JSON.stringify([packet.name, ...packet.args])}`);
    case 'refresh':
      return client.send(`42${packet.id ?? ''}${JSON.stringify(['pushgate:refresh', await tokenFrom(packet.token, userId)])}`);
    case 'ack':
      return client.send(`43${ackId(packet.delta)}${JSON.stringify(packet.args)}`);
    case 'binary-ack':
      client.send(`461-${ackId(packet.delta)}[{"_placeholder":true,"num":${packet.num}}]`);
      if (packet.attachment !== undefined) client.send(packet.attachment, true);
      return;
    case 'deep':
      return client.send(`${packet.prefix}${deepJson(packet.depth, packet.objects)}`);
  }
}

let rawRuns = 0;

async function runRaw(scenario: RawScenario): Promise<void> {
  const userId = `raw-${rawRuns++}`;
  const url = `${node.httpUrl.replace('http', 'ws')}/socket.io/?${scenario.query}`;
  const client = new RawClient(new WebSocket(url));
  const closer = { close: () => client.ws.terminate() };
  open.add(closer);
  try {
    await until(() => client.opened || client.closed, ANSWER_MS);
    const proper = scenario.query === 'EIO=4&transport=websocket';
    if (proper) {
      // The engine.io open packet comes first on a proper connection, whatever other clients sent.
      expect(await until(() => client.find((t) => t.startsWith('0{')) !== undefined, ANSWER_MS)).toBe(true);
    }
    let pushing: Promise<void> | undefined;
    if (proper && scenario.authenticate) {
      client.send(`40${JSON.stringify({ token: await signToken(userId), clientType: scenario.clientType })}`);
      await until(() => client.find((t) => t.startsWith('40') || t.startsWith('44')) !== undefined || client.closed, ANSWER_MS);
      const reply = client.find((t) => t.startsWith('40') || t.startsWith('44'));
      // A valid CONNECT is accepted: garbage from earlier connections has not broken the edge.
      expect(reply, 'reply to a valid CONNECT').toMatch(/^40\{"sid":"/);
      fuzzedUsers.add(userId);
      count(rawOutcomes, 'authenticated');
      if (scenario.push !== null) {
        const { noAck, ackTimeoutMs, data } = scenario.push;
        const sent = client.texts.length;
        pushing = checkedPush(node.client, { userId, event: 'fuzz', data, noAck, ackTimeoutMs }, 1);
        // The push reaches the client before the fuzzed packets (some of them answer it).
        await until(() => client.texts.slice(sent).some((t) => t.startsWith('42')) || client.closed, 2000);
      }
    }
    for (const packet of scenario.packets) {
      if (client.closed) break;
      await sendRaw(client, packet, userId);
    }
    await pushing;
    count(rawOutcomes, client.closed ? 'closed by server' : 'open at end');
  } finally {
    if (scenario.ending === 'namespace-disconnect') client.send('41');
    if (scenario.ending === 'terminate') client.ws.terminate();
    else client.ws.close();
    await until(() => client.closed, ANSWER_MS);
    open.delete(closer);
  }
}

/**
 * A push whose call must not fail with a server fault; with `expectSessions`, it reports that many
 * deliveries, each with a definite status.
 */
async function checkedPush(
  client: TestPushClient,
  request: Partial<PushToUserRequest>,
  expectSessions: number | undefined,
  deadlineMs = 3000,
): Promise<void> {
  try {
    const response = await client.pushToUser(request, { deadline: Date.now() + deadlineMs });
    count(grpcCodes, 'OK');
    for (const d of response.deliveries) count(deliveries, `${DeliveryStatus[d.status]}${d.error ? ` (${d.error.slice(0, 40)})` : ''}`);
    if (expectSessions !== undefined) {
      expect(response.deliveries).toHaveLength(expectSessions);
      for (const d of response.deliveries) expect(d.status).not.toBe(DeliveryStatus.DELIVERY_STATUS_UNSPECIFIED);
    }
  } catch (err) {
    expectNoServerFault(err, `PushToUser ${shown(request)}`);
  }
}

// --- (b) Socket.IO v4 handshakes ---

interface HandshakeScenario {
  readonly transport: 'websocket' | 'polling';
  readonly auth: { readonly token?: TokenRecipe; readonly clientType?: unknown; readonly extra?: Readonly<Record<string, unknown>> };
  readonly query: Readonly<Record<string, string>>;
  readonly userAgent: string | undefined;
  readonly emits: readonly { readonly event: string; readonly args: readonly unknown[] }[];
  readonly refresh: TokenRecipe | undefined;
}

const handshakeScenario: fc.Arbitrary<HandshakeScenario> = fc.record({
  transport: fc.constantFrom('websocket' as const, 'websocket' as const, 'polling' as const),
  auth: fc.record(
    {
      token: tokenRecipe,
      clientType,
      extra: fc.dictionary(fc.oneof(anyString(10), fc.constantFrom('__proto__', 'userId', 'constructor')), json, { maxKeys: 3 }),
    },
    { requiredKeys: [] },
  ),
  query: fc.dictionary(fc.constantFrom('token', 'clientType', 'userId', 'EIO', 'x'), printable, { maxKeys: 3 }),
  userAgent: fc.option(fc.oneof(printable, hugeString(1000, 20_000)), { nil: undefined }),
  emits: fc.array(
    fc.record({
      event: fc.oneof(fc.constantFrom('pushgate:disconnect', 'error', 'message'), anyString(20)),
      args: fc.array(json, { maxLength: 2 }),
    }),
    {
      maxLength: 3,
    },
  ),
  refresh: fc.option(tokenRecipe, { nil: undefined }),
});

const KNOWN_CODES = new Set(Object.keys(ERROR_CODES));
/** Node's HTTP server takes 16 KB of headers; a User-Agent near that is refused before Socket.IO sees it. */
const HTTP_HEADER_ROOM = 15_000;
let handshakeRuns = 0;

async function runHandshake(scenario: HandshakeScenario): Promise<void> {
  const userId = `hs-${handshakeRuns++}`;
  const { token, clientType: type, extra } = scenario.auth;
  const auth: Record<string, unknown> = { ...extra };
  if (token !== undefined) auth.token = await tokenFrom(token, userId);
  if (type !== undefined) auth.clientType = type;
  const socket: Socket = io(node.httpUrl, {
    auth,
    query: { ...scenario.query },
    transports: [scenario.transport],
    ...(scenario.userAgent !== undefined && { extraHeaders: { 'user-agent': scenario.userAgent } }),
    reconnection: false,
    forceNew: true,
  });
  open.add(socket);
  try {
    let timer: NodeJS.Timeout | undefined;
    const outcome = await new Promise<{ connected: true } | { connected: false; err: Error & { data?: { code?: unknown } } }>(
      (resolve, reject) => {
        socket.once('connect', () => resolve({ connected: true }));
        socket.once('connect_error', (err) => resolve({ connected: false, err }));
        timer = setTimeout(() => reject(new Error(`no answer to the handshake within ${ANSWER_MS} ms`)), ANSWER_MS);
      },
    ).finally(() => clearTimeout(timer));
    const plain = token?.kind === 'valid' && (type === 'web' || type === 'app' || type === 'pc') && scenario.userAgent === undefined;
    if (!outcome.connected) {
      const code = outcome.err.data?.code;
      count(handshakeOutcomes, typeof code === 'string' ? code : `transport: ${outcome.err.message}`);
      // A refusal names a known code, never `internal`; only a transport failure (a header too large for HTTP) has none.
      if (code !== undefined) expect(KNOWN_CODES.has(String(code)) && code !== 'internal', `refusal code ${String(code)}`).toBe(true);
      else
        expect(scenario.userAgent?.length ?? 0, `a transport failure (${outcome.err.message}) without an oversized header`).toBeGreaterThan(
          HTTP_HEADER_ROOM,
        );
      expect(plain, `a valid token and client type were refused: ${outcome.err.message}`).toBe(false);
      return;
    }
    count(handshakeOutcomes, 'connected');
    const entry = node.app.local.get(socket.id!);
    if (entry !== undefined) fuzzedUsers.add(entry.record.userId);
    for (const { event, args } of scenario.emits) socket.emit(event, ...args);
    if (scenario.refresh !== undefined) {
      const answer = (await socket.timeout(ANSWER_MS).emitWithAck('pushgate:refresh', await tokenFrom(scenario.refresh, userId))) as {
        ok: boolean;
        code?: string;
      };
      expect(answer.ok || (typeof answer.code === 'string' && KNOWN_CODES.has(answer.code) && answer.code !== 'internal')).toBe(true);
    }
  } finally {
    socket.close();
    open.delete(socket);
  }
}

// --- (c) gRPC requests, typed and raw ---

const SERVICE = '/pushgate.v1.PushService/';
const VICTIMS = ['victim-0', 'victim-1', 'victim-2'];

/** Mostly `usual`, sometimes `odd`: a request with several fields stays valid often enough to reach the sessions. */
function mostly<T>(usual: fc.Arbitrary<T>, odd: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return fc.oneof({ weight: 6, arbitrary: usual }, { weight: 1, arbitrary: odd });
}
const userIdField = mostly(fc.constantFrom(...VICTIMS), fc.oneof(fc.constant(''), anyString(80), hugeString(100, 5000)));
const clientTypes = mostly(
  fc.subarray(['web', 'app', 'pc', 'WEB']),
  fc.array(fc.oneof(fc.constantFrom('web', 'app', 'pc', 'WEB'), anyString(20)), { maxLength: 4 }),
);
const deadlineMs = fc.integer({ min: 20, max: 600 });
const pushData = fc.oneof(
  { weight: 6, arbitrary: json },
  { weight: 1, arbitrary: fc.integer({ min: 20, max: 300 }).map((depth) => nestedArray(depth)) },
  { weight: 1, arbitrary: hugeString(1000, 200_000) },
);

function nestedArray(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

const pushRequest = fc.record({
  userId: userIdField,
  event: mostly(
    fc.constantFrom('notice', 'alert'),
    fc.oneof(
      fc.constantFrom('connect', 'error', 'reconnect', 'pushgate:refresh', 'pushgate:disconnect', '__proto__', ''),
      anyString(60),
      hugeString(200, 2000),
    ),
  ),
  data: pushData,
  clientTypes,
  ackTimeoutMs: mostly(fc.integer({ min: 0, max: 500 }), fc.oneof(fc.integer({ min: 501, max: 100_000 }), fc.constant(4_294_967_295))),
  noAck: fc.boolean(),
  messageId: mostly(fc.constant(''), fc.oneof(anyString(40), hugeString(100, 5000))),
});

type GrpcCall =
  | { readonly kind: 'push'; readonly request: Partial<PushToUserRequest>; readonly deadlineMs: number }
  | { readonly kind: 'batch'; readonly request: Partial<PushToUsersRequest>; readonly deadlineMs: number; readonly maxMessages: number }
  | { readonly kind: 'list'; readonly request: Partial<ListSessionsRequest>; readonly deadlineMs: number }
  | { readonly kind: 'disconnect'; readonly request: Partial<DisconnectSessionsRequest>; readonly deadlineMs: number }
  | { readonly kind: 'watch'; readonly request: Partial<WatchPresenceRequest>; readonly deadlineMs: number; readonly maxMessages: number }
  | {
      readonly kind: 'raw';
      readonly method: string;
      readonly bytes: Uint8Array;
      readonly deadlineMs: number;
      readonly requestId: string | undefined;
    };

/** PushToUsers: the same options as PushToUser, for a few users (some odd, some repeated). */
const batchRequest = fc
  .tuple(pushRequest, fc.array(userIdField, { maxLength: 6 }))
  .map(([{ userId: _one, ...options }, userIds]) => ({ ...options, userIds }));

/** Valid encodings of random requests, then mutated: the decoder meets bytes close to real ones. */
const encodedRequest = fc.oneof(
  pushRequest.map((r) => ({ method: 'PushToUser', bytes: PushToUserRequest.encode(PushToUserRequest.fromPartial(r)).finish() })),
  batchRequest.map((r) => ({ method: 'PushToUsers', bytes: PushToUsersRequest.encode(PushToUsersRequest.fromPartial(r)).finish() })),
  fc
    .record({ userId: userIdField, clientTypes })
    .map((r) => ({ method: 'ListSessions', bytes: ListSessionsRequest.encode(ListSessionsRequest.fromPartial(r)).finish() })),
  fc
    .record({ userIds: fc.array(userIdField, { maxLength: 4 }), includeSnapshot: fc.boolean(), resumeAfter: anyString(30) })
    .map((r) => ({ method: 'WatchPresence', bytes: WatchPresenceRequest.encode(WatchPresenceRequest.fromPartial(r)).finish() })),
  fc
    .record({ userId: userIdField, sessionIds: fc.array(anyString(30), { maxLength: 3 }), clientTypes, reason: anyString(30) })
    .map((r) => ({
      method: 'DisconnectSessions',
      bytes: DisconnectSessionsRequest.encode(DisconnectSessionsRequest.fromPartial(r)).finish(),
    })),
);

const rawRequest = fc.oneof(
  // Random bytes.
  fc.record({
    method: fc.constantFrom('PushToUser', 'PushToUsers', 'ListSessions', 'WatchPresence', 'DisconnectSessions'),
    bytes: fc.uint8Array({ maxLength: 2000 }),
  }),
  // A real encoding with bytes flipped, cut short or extended.
  fc
    .tuple(
      encodedRequest,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.option(fc.nat()),
      fc.uint8Array({ maxLength: 20 }),
    )
    .map(([{ method, bytes }, flips, cut, tail]) => {
      const mutated = Buffer.from(bytes);
      for (const [at, value] of flips) if (mutated.length > 0) mutated[at % mutated.length] = value;
      const kept = cut === null ? mutated : mutated.subarray(0, cut % (mutated.length + 1));
      return { method, bytes: Buffer.concat([kept, tail]) };
    }),
  // `data` nested far deeper than any limit, built as wire bytes (no encoder would produce it).
  fc.integer({ min: 50, max: 20_000 }).map((depth) => ({ method: 'PushToUser', bytes: deepPushBytes(depth) })),
  // Methods that do not exist.
  fc.record({ method: fc.constantFrom('Nope', 'pushToUser', '../PushToUser', ''), bytes: fc.uint8Array({ maxLength: 50 }) }),
);

const grpcCall: fc.Arbitrary<GrpcCall> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('push' as const), request: pushRequest, deadlineMs }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('batch' as const),
      request: batchRequest,
      deadlineMs,
      maxMessages: fc.integer({ min: 0, max: 8 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('list' as const),
      request: fc.record({
        userId: userIdField,
        clientTypes,
        pageSize: fc.oneof(fc.constant(0), fc.integer({ min: -5, max: 5 }), fc.integer()),
        pageToken: fc.oneof(fc.constant(''), anyString(60), printable),
      }),
      deadlineMs,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('disconnect' as const),
      request: fc.record({
        userId: userIdField,
        sessionIds: fc.array(anyString(30), { maxLength: 3 }),
        clientTypes,
        reason: fc.oneof(fc.constant(''), anyString(40), hugeString(100, 3000)),
      }),
      deadlineMs,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('watch' as const),
      request: fc.record({
        userIds: fc.oneof(
          fc.array(userIdField, { maxLength: 5 }),
          fc.array(fc.constantFrom(...VICTIMS), { minLength: 100, maxLength: 3000 }),
        ),
        includeSnapshot: fc.boolean(),
        resumeAfter: fc.oneof(fc.constant(''), anyString(40), fc.constantFrom('0000000000000000-0', 'ffffffffffffffff-99999999999999999')),
      }),
      deadlineMs,
      maxMessages: fc.integer({ min: 0, max: 5 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.tuple(rawRequest, deadlineMs, fc.option(printable, { nil: undefined })).map(([{ method, bytes }, ms, requestId]) => ({
      kind: 'raw' as const,
      method: `${SERVICE}${method}`,
      bytes,
      deadlineMs: ms,
      requestId,
    })),
  },
);

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

function field(tag: number, bytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag, ...varint(bytes.length)]), bytes]);
}

/** PushToUserRequest{user_id, event, data: Value{list_value: ListValue{values: [Value{…}]}} × depth} as wire bytes. */
function deepPushBytes(depth: number): Buffer {
  let value: Buffer = Buffer.from([0x08, 0x00]); // Value{null_value: NULL_VALUE}
  for (let i = 0; i < depth; i++) value = field(0x32, field(0x0a, value)); // Value.list_value(6) ← ListValue.values(1)
  return Buffer.concat([field(0x0a, Buffer.from(VICTIMS[0]!)), field(0x12, Buffer.from('deep')), field(0x1a, value)]);
}

/** Statuses that mean the server broke rather than refused: each fails the run. */
const SERVER_FAULTS = new Set([GrpcStatus.INTERNAL, GrpcStatus.UNKNOWN, GrpcStatus.DATA_LOSS, GrpcStatus.UNAVAILABLE]);

function expectNoServerFault(err: unknown, what: string): void {
  const code = (err as ServiceError).code;
  if (typeof code !== 'number') throw err;
  count(grpcCodes, GrpcStatus[code] ?? String(code));
  expect(SERVER_FAULTS.has(code), `${what} ended ${GrpcStatus[code]}: ${(err as ServiceError).details}`).toBe(false);
}

/** A request as a failure message shows it: long strings cut short. */
function shown(value: unknown): string {
  const text = JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'string' && v.length > 80 ? `${v.slice(0, 80)}…(${v.length})` : v,
  );
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
}

let rawGrpc: GrpcClient;

async function runGrpc(call: GrpcCall, client: TestPushClient): Promise<void> {
  const options: Partial<CallOptions> = { deadline: Date.now() + call.deadlineMs };
  switch (call.kind) {
    case 'push':
      return checkedPush(client, call.request, undefined, call.deadlineMs);
    case 'list':
      try {
        await client.listSessions(call.request, options);
        count(grpcCodes, 'OK');
      } catch (err) {
        expectNoServerFault(err, `ListSessions ${shown(call.request)}`);
      }
      return;
    case 'disconnect':
      try {
        await client.disconnectSessions(call.request, options);
        count(grpcCodes, 'OK');
      } catch (err) {
        expectNoServerFault(err, `DisconnectSessions ${shown(call.request)}`);
      }
      return;
    case 'batch': {
      // Read some of the stream, then (sometimes) cancel it mid-batch, as an impatient caller does.
      const stream = client.raw.pushToUsers(PushToUsersRequest.fromPartial(call.request), new Metadata(), options);
      let received = 0;
      const status = await new Promise<StatusObject>((resolve) => {
        stream.on('data', () => {
          if (++received >= call.maxMessages) stream.cancel();
        });
        stream.on('error', () => {});
        stream.on('status', resolve);
        if (call.maxMessages === 0) setImmediate(() => stream.cancel());
      });
      count(grpcCodes, GrpcStatus[status.code] ?? String(status.code));
      expect(SERVER_FAULTS.has(status.code), `PushToUsers ${shown(call.request)} ended ${GrpcStatus[status.code]}: ${status.details}`).toBe(
        false,
      );
      return;
    }
    case 'watch': {
      const stream = client.raw.watchPresence(WatchPresenceRequest.fromPartial(call.request), new Metadata(), options);
      let received = 0;
      const status = await new Promise<StatusObject>((resolve) => {
        stream.on('data', (_response: WatchPresenceResponse) => {
          if (++received >= call.maxMessages) stream.cancel();
        });
        stream.on('error', () => {});
        stream.on('status', resolve);
        if (call.maxMessages === 0) setImmediate(() => stream.cancel());
      });
      count(grpcCodes, GrpcStatus[status.code] ?? String(status.code));
      expect(
        SERVER_FAULTS.has(status.code),
        `WatchPresence ${shown(call.request)} ended ${GrpcStatus[status.code]}: ${status.details}`,
      ).toBe(false);
      return;
    }
    case 'raw': {
      const metadata = new Metadata();
      if (call.requestId !== undefined) metadata.set('x-request-id', call.requestId);
      const what = `${call.method} with raw bytes ${Buffer.from(call.bytes).toString('base64').slice(0, 200)}`;
      const passthrough = (b: Buffer): Buffer => b;
      if (call.method === `${SERVICE}WatchPresence` || call.method === `${SERVICE}PushToUsers`) {
        const stream = rawGrpc.makeServerStreamRequest(call.method, passthrough, passthrough, Buffer.from(call.bytes), metadata, options);
        const status = await new Promise<StatusObject>((resolve) => {
          stream.on('data', () => stream.cancel());
          stream.on('error', () => {});
          stream.on('status', resolve);
        });
        count(grpcCodes, GrpcStatus[status.code] ?? String(status.code));
        expect(SERVER_FAULTS.has(status.code), `${what} ended ${GrpcStatus[status.code]}: ${status.details}`).toBe(false);
        return;
      }
      try {
        await new Promise((resolve, reject) =>
          rawGrpc.makeUnaryRequest(call.method, passthrough, passthrough, Buffer.from(call.bytes), metadata, options, (err, res) =>
            err ? reject(err) : resolve(res),
          ),
        );
        count(grpcCodes, 'OK');
      } catch (err) {
        expectNoServerFault(err, what);
        const known = ['PushToUser', 'ListSessions', 'WatchPresence', 'DisconnectSessions'].some((m) => call.method === `${SERVICE}${m}`);
        // An unknown method is UNIMPLEMENTED, unless its (short) deadline passed first on a busy machine.
        if (!known) expect([GrpcStatus.UNIMPLEMENTED, GrpcStatus.DEADLINE_EXCEEDED]).toContain((err as ServiceError).code);
      }
      return;
    }
  }
}

/** Sessions that stay connected through the gRPC phase, acking pushes with ever-different data (one never acks). */
async function connectVictims(): Promise<Socket[]> {
  const answers: unknown[] = [
    { ok: true },
    'fine',
    nestedArray(60),
    'y'.repeat(100_000),
    Buffer.from([1, 2, 3]),
    null,
    { nested: { a: [1, { b: 2 }] } },
  ];
  const sockets: Socket[] = [];
  let n = 0;
  for (const [i, userId] of VICTIMS.entries()) {
    for (const type of ['web', 'app']) {
      const socket = await node.connect(userId, type);
      fuzzedUsers.add(userId);
      const silent = i === 2 && type === 'app';
      socket.onAny((...args: unknown[]) => {
        const ack = args[args.length - 1];
        if (!silent && typeof ack === 'function') ack(answers[n++ % answers.length]);
      });
      sockets.push(socket);
    }
  }
  return sockets;
}

// --- the tests ---

describe('fuzzing a running node', () => {
  it(
    'survives random websocket frames and Socket.IO packets, before and after an authenticated CONNECT',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(rawScenario, { minLength: 1, maxLength: 3 }), async (scenarios) => {
          await Promise.all(scenarios.map(runRaw));
        }),
        runFor(1, RAW_MS),
      );
      expect(rawRuns).toBeGreaterThan(0);
    },
    RAW_MS + PHASE_SLACK_MS,
  );

  it(
    'answers random Socket.IO v4 handshakes with a session or a refusal that names a known code',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(handshakeScenario, { minLength: 1, maxLength: 4 }), async (scenarios) => {
          await Promise.all(scenarios.map(runHandshake));
        }),
        runFor(2, HANDSHAKE_MS),
      );
      expect(handshakeRuns).toBeGreaterThan(0);
    },
    HANDSHAKE_MS + PHASE_SLACK_MS,
  );

  it(
    'answers random gRPC requests (typed fields and raw bytes) without INTERNAL, UNKNOWN or UNAVAILABLE',
    async () => {
      const victims = await connectVictims();
      const client = new TestPushClient(node.grpcAddress);
      rawGrpc = new GrpcClient(node.grpcAddress, credentials.createInsecure());
      open.add(client).add(rawGrpc);
      try {
        await fc.assert(
          fc.asyncProperty(fc.array(grpcCall, { minLength: 1, maxLength: 6 }), async (calls) => {
            await Promise.all(calls.map((call) => runGrpc(call, client)));
          }),
          runFor(3, GRPC_MS),
        );
      } finally {
        for (const socket of victims) socket.close();
        client.close();
        rawGrpc.close();
        open.delete(client);
        open.delete(rawGrpc);
      }
      expect(grpcCodes.size).toBeGreaterThan(0);
    },
    GRPC_MS + PHASE_SLACK_MS,
  );

  it('afterwards: a normal push is ACKED on both sessions, and no session, subscriber, pending ack, handle or memory is left over', async () => {
    const { app } = node;
    // Everything the fuzz opened is closed client-side; the node must let go of all of it.
    for (const closer of open) closer.close();
    open.clear();

    const web = await node.connect('after-fuzz', 'web');
    const phone = await node.connect('after-fuzz', 'app');
    for (const socket of [web, phone]) socket.on('notice', (_data: unknown, ack: (answer: unknown) => void) => ack({ ok: true }));
    const response = await node.client.pushToUser({ userId: 'after-fuzz', event: 'notice', data: { text: 'hello' } });
    expect(response.deliveries.map((d) => [d.status, d.ackData])).toEqual([
      [DeliveryStatus.DELIVERY_STATUS_ACKED, { ok: true }],
      [DeliveryStatus.DELIVERY_STATUS_ACKED, { ok: true }],
    ]);
    web.close();
    phone.close();

    await waitFor('no local session', () => app.local.size === 0, { timeoutMs: 10_000 });
    expect(app.local.pendingWaits()).toBe(0);
    await waitFor('every session the presence feed announced to have left', () => liveSessions.size === 0, { timeoutMs: 10_000 });
    for (const userId of fuzzedUsers) expect(await app.registry.lookup(userId), `sessions of ${JSON.stringify(userId)}`).toEqual([]);
    for (const userId of [...VICTIMS, 'after-fuzz']) expect((await node.client.listSessions({ userId })).sessions).toEqual([]);
    // The test's own feed subscription is the only one left once the fuzz's streams are gone.
    await waitFor('no presence stream left', () => app.registry.subscriberCount() === 1, { timeoutMs: 10_000 });
    unsubscribeFeed?.();
    unsubscribeFeed = undefined;
    expect(app.registry.subscriberCount()).toBe(0);

    // Handles: connections, timers and the like drain as both sides notice the closes. No timer the
    // node's own code set during the fuzz may still be pending; other handles (the test runner's
    // own timers, Node's HTTP date cache) may differ from the baseline by a few.
    const base = baseline!;
    let growth: Record<string, number> = {};
    let leftTimers: string[] = [];
    const settled = await until(() => {
      growth = handleGrowth(base.handles, activeHandles());
      leftTimers = projectTimers();
      return total(growth) <= MAX_EXTRA_HANDLES && leftTimers.length === 0;
    }, 10_000);
    const heapGrowth = heapUsed() - base.heapUsed;
    console.log(
      `fuzz afterwards: ${fuzzedUsers.size} users connected; handles beyond baseline ${JSON.stringify(growth)}; ` +
        `node timers left ${leftTimers.length}; heap ${(base.heapUsed / 2 ** 20).toFixed(1)} MB → ${((base.heapUsed + heapGrowth) / 2 ** 20).toFixed(1)} MB`,
    );
    expect(leftTimers, 'timers the node set during the fuzz and never cleared').toEqual([]);
    expect(settled, `active handles beyond the baseline: ${JSON.stringify(growth)}`).toBe(true);
    expect(heapGrowth).toBeLessThan(MAX_HEAP_GROWTH_BYTES);

    // No server fault was logged: client mistakes are logged below error.
    expect(logged.filter((line) => line.level >= 50).map((line) => `${line.msg}: ${line.err?.message ?? ''}`)).toEqual([]);
  }, 60_000);
});
