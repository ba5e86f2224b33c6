/**
 * npm run bench:cluster — what cluster mode costs a PushToUser, measured on the real pushgate (the
 * App class, configured through parseConfig) against a single node in the same run:
 *
 *   memory       one node without REDIS_URL, all S sessions on it (the reference);
 *   redis-local  cluster node A on a private Redis, all S sessions on A, call on A (the Redis lookup);
 *   cross-node   call on cluster node A, all S sessions on node B (lookup + one bus round trip);
 *   spread       call on A, the S sessions spread over A, B and C (lookup + two bus round trips in parallel).
 *
 * Every call is a real gRPC PushToUser; every session a real socket.io-client socket that acks at
 * once; every response must hold S ACKED deliveries. Targets run interleaved in rounds (order
 * alternating) after a warm-up, so drift on this noisy machine hits all alike; read the ratios.
 * Redis commands per push come from INFO commandstats deltas on the private redis-server over a
 * separate counted batch, and do not depend on the machine.
 *
 * All nodes, all sockets and the bench share this one Node process (one event loop), so absolute
 * numbers are a lower bound for a real cluster; redis-server is a separate process.
 *
 * Options (env): BENCH_SESSIONS (3), BENCH_SESSIONS_ALSO (30; 0 skips the second pass),
 * BENCH_ROUNDS (4), BENCH_CALLS (500 sequential per round and target), BENCH_TPUT_CALLS (1000 per
 * round and target), BENCH_CONCURRENCY (32), BENCH_WARMUP (300), BENCH_COUNTED (300).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { credentials, Metadata } from '@grpc/grpc-js';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { io, type Socket } from 'socket.io-client';
import { App } from '../src/app.js';
import { parseConfig } from '../src/config/config.js';
import {
  DeliveryStatus,
  deliveryStatusToJSON,
  PushServiceClient,
  PushToUserRequest,
  type PushToUserResponse,
} from '../src/gen/pushgate/v1/push_service.js';
import { createLogger } from '../src/logger.js';
import { startRedis, type TestRedis } from '../test/support/redis-server.js';
import { signToken, TEST_SECRET } from '../test/support/tokens.js';

const envInt = (name: string, fallback: number, min: number): number => {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be a whole number ≥ ${min}, got "${raw}"`);
  return value;
};

const SESSIONS = envInt('BENCH_SESSIONS', 3, 1);
const SESSIONS_ALSO = envInt('BENCH_SESSIONS_ALSO', 30, 0);
const ROUNDS = envInt('BENCH_ROUNDS', 4, 1);
const CALLS = envInt('BENCH_CALLS', 500, 1);
const TPUT_CALLS = envInt('BENCH_TPUT_CALLS', 1000, 1);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 32, 1);
const WARMUP = envInt('BENCH_WARMUP', 300, 0);
const COUNTED = envInt('BENCH_COUNTED', 300, 1);
const CLIENT_TYPES = ['app', 'pc', 'web'];
const ACK_TIMEOUT_MS = 5000;
/**
 * Redis commands no push sends: each cluster node's presence reader issues a blocking XREAD that
 * returns every 5 s when idle. Counted apart so the per-push figure is push traffic only.
 */
const BACKGROUND_COMMANDS = new Set(['xread']);
/** Each cleanup step gets this long before the next one runs anyway. */
const CLEANUP_STEP_MS = 5000;
const TARGET_NAMES = ['memory', 'redis-local', 'cross-node', 'spread'] as const;
type TargetName = (typeof TARGET_NAMES)[number];

/**
 * Settings of every node. The timers that do background Redis work (lease renewal, reaping,
 * last_seen_at refreshes driven by Socket.IO pongs) are set to 10 minutes so the counted batches
 * see only push traffic; none of them is on the push path.
 */
const BASE_ENV: Record<string, string> = {
  PUSHGATE_GRPC_PORT: '0',
  PUSHGATE_HTTP_PORT: '0',
  PUSHGATE_HOST: '127.0.0.1',
  PUSHGATE_JWT_SECRET: TEST_SECRET,
  PUSHGATE_SHUTDOWN_GRACE_MS: '2000',
  PUSHGATE_PING_INTERVAL_MS: '600000',
};
const CLUSTER_ENV: Record<string, string> = {
  PUSHGATE_REDIS_PREFIX: 'bench:',
  PUSHGATE_NODE_LEASE_MS: '600000',
  PUSHGATE_REAP_INTERVAL_MS: '600000',
};

interface Node {
  readonly name: string;
  readonly app: App;
  readonly grpcAddress: string;
  readonly httpUrl: string;
}

interface Target {
  readonly name: TargetName;
  readonly userId: string;
  readonly sessions: number;
  readonly client: PushServiceClient;
  readonly request: PushToUserRequest;
  readonly latencies: number[];
  readonly rates: number[];
  /** Redis command calls over the counted batch, by command name. */
  readonly commands: Map<string, number>;
  /** BACKGROUND_COMMANDS seen during the counted batch (not per push). */
  readonly background: Map<string, number>;
  countedCalls: number;
}

/** Node loggers: warnings while measuring are shown; the expected ones of a node stopping are not. */
const loggers: Logger[] = [];

/** Cleanup steps, run last registered first, in `finally` — also after an error. */
const cleanups: { readonly label: string; readonly run: () => unknown }[] = [];

function onCleanup(label: string, run: () => unknown): void {
  cleanups.push({ label, run });
}

async function runCleanups(): Promise<string[]> {
  const problems: string[] = [];
  for (const { label, run } of cleanups.splice(0).reverse()) {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), CLEANUP_STEP_MS)));
    const done = Promise.resolve()
      .then(run)
      .then(
        () => 'done' as const,
        (err: unknown) => {
          problems.push(`${label}: ${(err as Error).message}`);
          return 'done' as const;
        },
      );
    if ((await Promise.race([done, late])) === 'late') problems.push(`${label}: still running after ${CLEANUP_STEP_MS} ms`);
    clearTimeout(timer);
  }
  return problems;
}

async function startNode(name: string, env: Record<string, string>): Promise<Node> {
  const config = parseConfig([], { ...BASE_ENV, ...env });
  const log = createLogger('warn').child({ node: name });
  loggers.push(log);
  const app = new App(config, log);
  // Registered before start: a node that fails half-way through starting is still stopped.
  onCleanup(`stop node ${name}`, () => app.stop());
  const { grpcPort, httpPort } = await app.start();
  return { name, app, grpcAddress: `127.0.0.1:${grpcPort}`, httpUrl: `http://127.0.0.1:${httpPort}` };
}

async function connect(node: Node, userId: string, clientType: string): Promise<Socket> {
  const token = await signToken(userId);
  const socket = io(node.httpUrl, { auth: { token, clientType }, transports: ['websocket'], reconnection: false, forceNew: true });
  onCleanup(`close a socket of ${userId}`, () => socket.close());
  socket.onAny((...args: unknown[]) => {
    const ack = args[args.length - 1];
    if (typeof ack === 'function') ack({ ok: true });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (err) => reject(new Error(`socket for ${userId} on ${node.name}: ${err.message}`)));
  });
  return socket;
}

function push(client: PushServiceClient, request: PushToUserRequest): Promise<PushToUserResponse> {
  return new Promise((resolve, reject) => client.pushToUser(request, new Metadata(), {}, (err, res) => (err ? reject(err) : resolve(res))));
}

/** Throws unless the response holds exactly S deliveries, all ACKED. */
function verify(target: Target, response: PushToUserResponse): void {
  const { deliveries } = response;
  const acked = deliveries.filter((d) => d.status === DeliveryStatus.DELIVERY_STATUS_ACKED).length;
  if (deliveries.length === target.sessions && acked === target.sessions && response.acked === target.sessions) return;
  const other = deliveries.find((d) => d.status !== DeliveryStatus.DELIVERY_STATUS_ACKED);
  const detail = other === undefined ? '' : ` (first other: ${deliveryStatusToJSON(other.status)} ${other.error})`;
  throw new Error(`${target.name}: expected ${target.sessions} ACKED deliveries, got ${acked} ACKED of ${deliveries.length}${detail}`);
}

async function pushVerified(target: Target): Promise<void> {
  verify(target, await push(target.client, target.request));
}

async function sequential(target: Target, calls: number, record: boolean): Promise<void> {
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    const response = await push(target.client, target.request);
    const elapsed = performance.now() - started;
    verify(target, response);
    if (record) target.latencies.push(elapsed);
  }
}

async function throughput(target: Target, calls: number): Promise<number> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next++ < calls) await pushVerified(target);
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, calls) }, worker));
  return calls / ((performance.now() - started) / 1000);
}

async function commandStats(admin: Redis): Promise<Map<string, number>> {
  const info = (await admin.info('commandstats')) as string;
  const calls = new Map<string, number>();
  for (const line of info.split('\r\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (match) calls.set(match[1]!, Number(match[2]));
  }
  return calls;
}

/** A sequential batch between two INFO snapshots (outside any timed loop). */
async function countedBatch(admin: Redis, target: Target, calls: number): Promise<void> {
  const before = await commandStats(admin);
  await sequential(target, calls, false);
  const after = await commandStats(admin);
  for (const [name, n] of after) {
    if (name === 'info') continue; // the snapshots themselves
    const delta = n - (before.get(name) ?? 0);
    if (delta <= 0) continue;
    const into = BACKGROUND_COMMANDS.has(name) ? target.background : target.commands;
    into.set(name, (into.get(name) ?? 0) + delta);
  }
  target.countedCalls += calls;
}

/** Commands pushgate's Lua scripts call: Redis counts each of those calls in commandstats too. */
function scriptCommands(): Set<string> {
  const found = new Set<string>();
  try {
    const dir = new URL('../src/registry/lua/', import.meta.url);
    for (const file of readdirSync(dir)) {
      if (!file.endsWith('.lua')) continue;
      const text = readFileSync(new URL(file, dir), 'utf8');
      for (const match of text.matchAll(/redis\.p?call\(\s*['"]([A-Za-z]+)['"]/g)) found.add(match[1]!.toLowerCase());
    }
  } catch {
    // only labels the breakdown; without it the counts are the same
  }
  return found;
}

/** Waits until the registry (as seen from `via`) holds the user's S sessions on the expected nodes. */
async function awaitRegistered(via: Node, userId: string, expected: Map<string, number>): Promise<void> {
  const want = [...expected]
    .sort()
    .map(([node, n]) => `${node}×${n}`)
    .join(' ');
  const deadline = Date.now() + 10_000;
  let seen = '';
  for (;;) {
    const sessions = await via.app.registry.lookup(userId);
    const counts = new Map<string, number>();
    for (const s of sessions) counts.set(s.nodeId, (counts.get(s.nodeId) ?? 0) + 1);
    seen = [...counts]
      .sort()
      .map(([node, n]) => `${node}×${n}`)
      .join(' ');
    if (seen === want) return;
    if (Date.now() > deadline) throw new Error(`sessions of ${userId}: expected ${want}, registry holds ${seen || 'none'}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Nodes {
  readonly memory: Node;
  readonly a: Node;
  readonly b: Node;
  readonly c: Node;
}

/** Connects S sessions per target (each target its own user) and returns the targets. */
async function setUp(nodes: Nodes, sessions: number): Promise<Target[]> {
  const placement: Record<TargetName, { caller: Node; holders: Node[] }> = {
    memory: { caller: nodes.memory, holders: [nodes.memory] },
    'redis-local': { caller: nodes.a, holders: [nodes.a] },
    'cross-node': { caller: nodes.a, holders: [nodes.b] },
    spread: { caller: nodes.a, holders: [nodes.a, nodes.b, nodes.c] },
  };
  const targets: Target[] = [];
  for (const name of TARGET_NAMES) {
    const { caller, holders } = placement[name];
    const userId = `bench-${name}-${sessions}`;
    const expected = new Map<string, number>();
    for (let i = 0; i < sessions; i++) {
      const holder = holders[i % holders.length]!;
      await connect(holder, userId, CLIENT_TYPES[i % CLIENT_TYPES.length]!);
      const nodeId = holder.app.config.server.nodeId;
      expected.set(nodeId, (expected.get(nodeId) ?? 0) + 1);
    }
    await awaitRegistered(caller, userId, expected);
    const client = new PushServiceClient(caller.grpcAddress, credentials.createInsecure());
    onCleanup(`close gRPC client of ${name}`, () => client.close());
    targets.push({
      name,
      userId,
      sessions,
      client,
      request: PushToUserRequest.fromPartial({ userId, event: 'notice', data: { title: 'approve', id: 42 }, ackTimeoutMs: ACK_TIMEOUT_MS }),
      latencies: [],
      rates: [],
      commands: new Map(),
      background: new Map(),
      countedCalls: 0,
    });
  }
  return targets;
}

async function measure(admin: Redis, targets: Target[]): Promise<void> {
  for (const target of targets) {
    await sequential(target, WARMUP, false);
    await throughput(target, Math.max(WARMUP, CONCURRENCY));
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
      await sequential(target, CALLS, true);
      target.rates.push(await throughput(target, TPUT_CALLS));
    }
  }
  // Counted separately: INFO round trips stay out of the timed loops.
  for (const target of targets) await countedBatch(admin, target, COUNTED);
}

function report(sessions: number, targets: Target[], luaCommands: Set<string>): void {
  const rows = targets.map((t) => ({
    t,
    p50: percentile(t.latencies, 50),
    p99: percentile(t.latencies, 99),
    rate: percentile(t.rates, 50),
    cmds: [...t.commands.values()].reduce((sum, n) => sum + n, 0) / t.countedCalls,
  }));
  const ref = rows.find((r) => r.t.name === 'memory')!;
  console.log('');
  console.log(
    `S = ${sessions} sessions per user; ${ROUNDS} rounds × ${CALLS} sequential calls per target (after ${WARMUP} warm-up), ` +
      `throughput = median over rounds of ${TPUT_CALLS} calls at concurrency ${CONCURRENCY}`,
  );
  console.log('target        p50 ms   p99 ms  +p50 ms   calls/s   p50/mem  p99/mem  tput/mem  redis cmds/push');
  for (const r of rows) {
    const plus = r === ref ? '—' : (r.p50 - ref.p50).toFixed(3);
    console.log(
      `${r.t.name.padEnd(12)} ${r.p50.toFixed(3).padStart(7)} ${r.p99.toFixed(3).padStart(8)} ${plus.padStart(8)} ${r.rate.toFixed(0).padStart(9)} ` +
        `${(r.p50 / ref.p50).toFixed(2).padStart(8)}× ${(r.p99 / ref.p99).toFixed(2).padStart(7)}× ${(r.rate / ref.rate).toFixed(2).padStart(8)}× ` +
        `${r.cmds.toFixed(2).padStart(16)}`,
    );
  }
  console.log(
    `Redis commands per push (INFO commandstats deltas over ${COUNTED} counted sequential calls per target; * = called inside a Lua script):`,
  );
  for (const r of rows) {
    const parts = [...r.t.commands]
      .map(([name, n]) => [name, n / r.t.countedCalls] as const)
      .sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1))
      .map(([name, perPush]) => `${name}${luaCommands.has(name) ? '*' : ''} ${perPush.toFixed(2)}`);
    const background = [...r.t.background].map(([name, n]) => `${name} ×${n}`);
    const tail = background.length > 0 ? `   (+ idle background during the batch, not counted: ${background.join(', ')})` : '';
    console.log(`  ${r.t.name.padEnd(12)} ${r.cmds.toFixed(2).padStart(6)} = ${parts.join(', ') || 'none'}${tail}`);
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const redis: TestRedis = await startRedis();
  onCleanup('stop redis-server', () => redis.stop());
  const admin = redis.client();
  const clusterEnv = { ...CLUSTER_ENV, REDIS_URL: redis.url };
  const nodes: Nodes = {
    memory: await startNode('memory', { PUSHGATE_NODE_ID: 'memory' }),
    a: await startNode('A', { ...clusterEnv, PUSHGATE_NODE_ID: 'node-a' }),
    b: await startNode('B', { ...clusterEnv, PUSHGATE_NODE_ID: 'node-b' }),
    c: await startNode('C', { ...clusterEnv, PUSHGATE_NODE_ID: 'node-c' }),
  };
  const luaCommands = scriptCommands();
  console.log(
    `bench:cluster — PushToUser through pushgate. All nodes (memory; cluster A, B, C), all client sockets and the bench run in this ONE Node process ` +
      `(one event loop); private redis-server on ${redis.url} (separate process). Read ratios, not absolute times.`,
  );
  console.log(
    'memory = 1 node, no REDIS_URL | redis-local = sessions on A, call on A | cross-node = sessions on B, call on A | spread = sessions over A, B, C, call on A',
  );

  for (const sessions of SESSIONS_ALSO > 0 && SESSIONS_ALSO !== SESSIONS ? [SESSIONS, SESSIONS_ALSO] : [SESSIONS]) {
    const targets = await setUp(nodes, sessions);
    await measure(admin, targets);
    report(sessions, targets, luaCommands);
  }
  console.log(`\n(bench took ${((performance.now() - started) / 1000).toFixed(1)} s)`);
}

let failure: unknown;
try {
  await main();
} catch (err) {
  failure = err;
} finally {
  // A stopping node reports itself NOT_SERVING at warn level: expected here, so not printed.
  for (const log of loggers) log.level = 'error';
  const problems = await runCleanups();
  for (const problem of problems) console.error(`cleanup: ${problem}`);
  if (failure !== undefined) console.error(failure);
  if (failure !== undefined || problems.length > 0) process.exitCode = 1;
}
