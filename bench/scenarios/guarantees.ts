import type { Redis } from 'ioredis';
import { DeliveryMode } from '../../src/gen/pushgate/v1/inbox.js';
import { type ListInboxResponse, PushToUserRequest, type PushToUserResponse } from '../../src/gen/pushgate/v1/push_service.js';
import type { BenchServer, Devices } from '../lib/fixtures.js';
import { benchRedis, pushToUser, settle, sleep, startDevices, startServer, until } from '../lib/fixtures.js';
import { cpuMs, percentile, perOp, type RedisSnapshot, type Row, redisDelta, redisSnapshot, type ScenarioResult } from '../lib/measure.js';

/**
 * guarantees — what the delivery guarantees (issue 12) cost per operation, each as a ratio to the
 * same server's plain LIVE PushToUser measured in the same rounds (order alternating), in memory
 * and in Redis mode: a LIVE push with the caller's message_id (idempotency claim + receipt), a
 * STORE push to 3 acking sessions (stored, then removed by the live ack), a STORE_IF_UNACKED push
 * to an offline user (stored), and a replayed message (those stored messages, replayed to a
 * session of each user as it connects and acked: the connect's cost with an empty inbox, measured
 * in the same round, subtracted). Redis commands and CPU from INFO deltas of a private redis-server,
 * minus what the idle node sends on its own (inbox expiry sweeps, presence XREAD), measured first.
 */

const QUIET = { PUSHGATE_NODE_LEASE_MS: '600000', PUSHGATE_REAP_INTERVAL_MS: '600000', PUSHGATE_PING_INTERVAL_MS: '600000' };
const SESSIONS = 3;
const CONCURRENCY = 32;
/** Stored messages per offline user, replayed when its session connects. */
const PER_USER = 20;
const PUSHES = ['LIVE (generated id)', 'LIVE + message_id', 'STORE, 3 sessions ack', 'STORE_IF_UNACKED, offline'] as const;
type Push = (typeof PUSHES)[number];
type Op = Push | 'replayed message' | 'connect, empty inbox';

interface Tally {
  readonly latencies: number[];
  readonly cpuUs: number[];
  readonly redisUs: number[];
  readonly commands: Map<string, number>;
  ops: number;
}

/** What the idle node sends Redis on its own, per ms: subtracted from every count and CPU figure. */
interface Background {
  readonly cpuPerMs: number;
  readonly commandsPerMs: Map<string, number>;
}

interface Target {
  readonly mode: 'memory' | 'redis';
  readonly server: BenchServer;
  readonly live: Devices;
  readonly replay: Devices;
  readonly tallies: Map<Op, Tally>;
  redis?: { readonly client: Redis; readonly background: Background };
}

let ids = 0;
const nonce = Date.now().toString(36);

export async function guarantees(quick: boolean): Promise<ScenarioResult> {
  const calls = quick ? 100 : 1500;
  const rounds = quick ? 2 : 4;
  const redis = await benchRedis();
  const targets: Target[] = [];
  try {
    const start = async (mode: Target['mode']): Promise<Target> => {
      const env = mode === 'redis' ? { ...QUIET, REDIS_URL: redis.url, PUSHGATE_REDIS_PREFIX: 'g:' } : QUIET;
      const [server, live, replay] = await Promise.all([
        startServer(`pushgate ${mode}`, 'pushgate', env),
        startDevices(1),
        startDevices(1),
      ]);
      const target: Target = { mode, server, live, replay, tallies: new Map() };
      targets.push(target); // stopped in `finally` even if the other fails to start
      await live.connect(server.httpUrl, Array(SESSIONS).fill('g-live'));
      return target;
    };
    // Started side by side (a quick run's seconds); measured one at a time.
    const [mem, red] = await Promise.all([start('memory'), start('redis')]);
    targets.splice(0, 2, mem, red); // this order, whichever started first
    const background = await idleBackground(redis.client, quick ? 1500 : 4000);
    red.redis = { client: redis.client, background };

    // Warm-up (the full run's replays its stored messages too; --quick leaves them stored, unmeasured).
    for (const t of targets) await round(t, -1, quick ? 50 : 300, false, !quick);
    for (let r = 0; r < rounds; r++) for (const t of r % 2 === 0 ? targets : [...targets].reverse()) await round(t, r, calls, true, true);

    const rows = targets.flatMap(tableRows);
    return {
      scenario: 'guarantees',
      title: `Delivery guarantees vs a plain LIVE PushToUser (${SESSIONS} acking sessions), memory and Redis mode (${rounds} alternating rounds × ${calls} sequential + ${calls} at ${CONCURRENCY} in flight per push kind; replay ${PER_USER} messages per user)`,
      rows,
      inputs: Object.fromEntries(targets.flatMap(inputs)),
      notes: [
        '"×LIVE" columns: the operation over the same server\'s plain LIVE push (generated id) in the same rounds; server CPU covers the sequential and the concurrent calls of each round',
        `replayed message: ${PER_USER} stored messages per user (the round's STORE_IF_UNACKED pushes), one session per user connecting and acking each; its CPU and Redis figures are (connects of those users − as many connects of users with an empty inbox, same round) / messages replayed; "connect, empty inbox" is per connect, the replay's claim script included (before the inbox: 9 Redis commands per connect of a user's only session — results/2026-12-01-connect.md has 8 at 2 sessions per user, where half the connects add no user_online event)`,
        `Redis figures have what the idle node sends on its own subtracted (measured first for ${quick ? 1.5 : 4} s: ${describe(background)}), by command and for CPU`,
        "every push is checked: LIVE and STORE pushes must be acked by all 3 sessions (STORE then not stored), STORE_IF_UNACKED ones stored; after each replay a sample of the users' inboxes must be empty",
      ],
    };
  } finally {
    for (const t of targets) for (const part of [t.live, t.replay, t.server]) await part.stop();
    await redis.stop();
  }
}

/** One round on one server: the four push kinds in alternating order, then the replay of what this round stored. */
async function round(t: Target, r: number, calls: number, record: boolean, replay: boolean): Promise<void> {
  const offline = `g-off-${t.mode}-${r}`;
  const order = r % 2 === 0 ? PUSHES : [...PUSHES].reverse();
  for (const push of order) await measurePushes(t, push, calls, offline, record);
  if (!replay) return;
  const users = Math.ceil((2 * calls) / PER_USER);
  await measureReplay(t, r, users, offline, record);
}

function request(push: Push, i: number, offline: string): PushToUserRequest {
  const base = { userId: 'g-live', event: 'notice', data: { title: 'approve', id: 42 }, ackTimeoutMs: 5000 };
  switch (push) {
    case 'LIVE (generated id)':
      return PushToUserRequest.fromPartial(base);
    case 'LIVE + message_id':
      return PushToUserRequest.fromPartial({ ...base, messageId: `g-${nonce}-${++ids}` });
    case 'STORE, 3 sessions ack':
      return PushToUserRequest.fromPartial({ ...base, deliveryMode: DeliveryMode.DELIVERY_MODE_STORE });
    case 'STORE_IF_UNACKED, offline':
      return PushToUserRequest.fromPartial({
        ...base,
        userId: `${offline}-${Math.floor(i / PER_USER)}`,
        deliveryMode: DeliveryMode.DELIVERY_MODE_STORE_IF_UNACKED,
      });
  }
}

function check(push: Push, response: PushToUserResponse): void {
  const ok =
    push === 'STORE_IF_UNACKED, offline'
      ? response.stored && response.deliveries.length === 0
      : response.acked === SESSIONS && !response.stored;
  if (!ok) throw new Error(`${push}: unexpected response ${JSON.stringify({ ...response, deliveries: response.deliveries.length })}`);
}

async function measurePushes(t: Target, push: Push, calls: number, offline: string, record: boolean): Promise<void> {
  const one = async (i: number): Promise<number> => {
    const started = performance.now();
    check(push, await pushToUser(t.server.client, request(push, i, offline)));
    return performance.now() - started;
  };
  const latencies: number[] = [];
  const before = await startCounting(t);
  for (let i = 0; i < calls; i++) latencies.push(await one(i));
  let next = calls;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < 2 * calls) await one(next++);
    }),
  );
  await sleep(50); // bookkeeping a call does not wait for (receipt events) lands in this window
  if (record) await stopCounting(t, push, before, 2 * calls, latencies);
}

/**
 * Connects `users` users with an empty inbox, then the `users` offline users the round's
 * STORE_IF_UNACKED pushes went to (order alternating by round), each until its server is idle
 * again and every replayed message acked; closes each batch of sessions after.
 */
async function measureReplay(t: Target, r: number, users: number, offline: string, record: boolean): Promise<void> {
  const names = (prefix: string) => Array.from({ length: users }, (_, i) => `${prefix}-${i}`);
  const batches: ['connect, empty inbox' | 'replayed message', string[]][] = [
    ['connect, empty inbox', names(`g-empty-${t.mode}-${r}`)],
    ['replayed message', names(offline)],
  ];
  const acksBefore = await deviceAcks(t.replay);
  for (const [op, batch] of r % 2 === 0 ? batches : [...batches].reverse()) {
    const before = await startCounting(t);
    await t.replay.connect(t.server.httpUrl, batch);
    if (op === 'replayed message')
      await until('every replayed message acked', async () => (await deviceAcks(t.replay)) - acksBefore >= users * PER_USER, 60_000);
    await settle(t.server.pid);
    if (record) await stopCounting(t, op, before, users, []);
    await t.replay.closeAll();
    await settle(t.server.pid);
  }
  if ((await deviceAcks(t.replay)) - acksBefore !== users * PER_USER) throw new Error(`replay: expected ${users * PER_USER} acks`);
  for (const user of [`${offline}-0`, `${offline}-${users - 1}`]) {
    const left = await listInbox(t.server, user);
    if (left.messages.length > 0) throw new Error(`replay: ${user} still has ${left.messages.length} stored messages after acking them`);
  }
}

type Counting = { readonly cpuMs: number; readonly at: number; readonly redis?: RedisSnapshot };

async function startCounting(t: Target): Promise<Counting> {
  const redis = t.redis && (await redisSnapshot(t.redis.client));
  return { cpuMs: cpuMs(t.server.pid), at: performance.now(), ...(redis && { redis }) };
}

async function stopCounting(t: Target, op: Op, before: Counting, ops: number, latencies: number[]): Promise<void> {
  const tally: Tally = t.tallies.get(op) ?? { latencies: [], cpuUs: [], redisUs: [], commands: new Map(), ops: 0 };
  t.tallies.set(op, tally);
  tally.cpuUs.push((cpuMs(t.server.pid) - before.cpuMs) * 1000);
  tally.latencies.push(...latencies);
  tally.ops += ops;
  if (t.redis && before.redis) {
    const delta = redisDelta(before.redis, await redisSnapshot(t.redis.client));
    const ms = performance.now() - before.at;
    const { background } = t.redis;
    tally.redisUs.push((delta.cpuMs - background.cpuPerMs * ms) * 1000);
    const names = new Set([...delta.commands.keys(), ...background.commandsPerMs.keys()]);
    for (const name of names) {
      const n = (delta.commands.get(name) ?? 0) - (background.commandsPerMs.get(name) ?? 0) * ms;
      tally.commands.set(name, (tally.commands.get(name) ?? 0) + n);
    }
  }
}

type Figures = Record<'p50' | 'cpu' | 'redisUs' | 'cmds' | 'ops', number> & { readonly commands: Map<string, number> };

/** Per-operation figures of one tally (sums over rounds / operations); replay as the difference to an empty-inbox connect. */
function figures(t: Target, op: Op): Figures {
  const sum = (xs: Iterable<number>): number => [...xs].reduce((a, b) => a + b, 0);
  const tally = t.tallies.get(op)!;
  // A replayed message: the replay connects minus as many empty-inbox connects, per message.
  const empty = op === 'replayed message' ? t.tallies.get('connect, empty inbox') : undefined;
  const ops = op === 'replayed message' ? tally.ops * PER_USER : tally.ops;
  const commands = new Map<string, number>();
  for (const name of new Set([...tally.commands.keys(), ...(empty?.commands.keys() ?? [])]))
    commands.set(name, Math.max(0, (tally.commands.get(name) ?? 0) - (empty?.commands.get(name) ?? 0)));
  return {
    p50: percentile(tally.latencies, 50),
    ops,
    cpu: (sum(tally.cpuUs) - sum(empty?.cpuUs ?? [])) / ops,
    redisUs: (sum(tally.redisUs) - sum(empty?.redisUs ?? [])) / ops,
    cmds: sum(commands.values()) / ops,
    commands,
  };
}

/** Capacity-model inputs: server CPU per operation in each mode, Redis commands and CPU in Redis mode. */
function inputs(t: Target): [string, number][] {
  const names: [Op, string][] = [
    ['LIVE + message_id', 'LIVE push with message_id'],
    ['STORE, 3 sessions ack', 'STORE push acked live'],
    ['STORE_IF_UNACKED, offline', 'stored push (offline user)'],
    ['replayed message', 'replayed message'],
    ['connect, empty inbox', 'connect (empty inbox)'],
  ];
  return names.flatMap(([op, name]): [string, number][] => {
    const f = figures(t, op);
    if (t.redis === undefined) return [[`server CPU µs per ${name} (memory)`, f.cpu]];
    return [
      [`server CPU µs per ${name} (redis)`, f.cpu],
      [`Redis commands per ${name}`, f.cmds],
      [`Redis CPU µs per ${name}`, f.redisUs],
    ];
  });
}

function tableRows(t: Target): Row[] {
  const live = figures(t, 'LIVE (generated id)');
  const ops: Op[] = [...PUSHES, 'replayed message', 'connect, empty inbox'];
  return ops.map((op) => {
    const f = figures(t, op);
    const [isPush, rel] = [(PUSHES as readonly string[]).includes(op), op !== 'connect, empty inbox'];
    return {
      target: `${t.mode}: ${op}`,
      ops: f.ops,
      ...(isPush && { 'p50 ms': f.p50, 'p50 ×LIVE': f.p50 / live.p50 }),
      'server CPU µs/op': f.cpu,
      ...(rel && { 'CPU ×LIVE': f.cpu / live.cpu }),
      ...(t.redis && { 'Redis cmds/op': f.cmds, ...(rel && { 'Redis cmds ×LIVE': f.cmds / live.cmds }) }),
      ...(t.redis && { 'Redis CPU µs/op': f.redisUs, ...(rel && { 'Redis CPU ×LIVE': f.redisUs / live.redisUs }) }),
      ...(t.redis && { 'commands per op': perOp(f.commands, f.ops) }),
    };
  });
}

/** Redis CPU and commands per ms of an idle node (inbox expiry sweeps, presence and receipt readers). */
async function idleBackground(client: Redis, ms: number): Promise<Background> {
  await sleep(500);
  const before = await redisSnapshot(client);
  const started = performance.now();
  await sleep(ms);
  const delta = redisDelta(before, await redisSnapshot(client));
  const elapsed = performance.now() - started;
  return { cpuPerMs: delta.cpuMs / elapsed, commandsPerMs: new Map([...delta.commands].map(([k, v]) => [k, v / elapsed])) };
}

const describe = (b: Background): string =>
  [`${(b.cpuPerMs * 1000).toFixed(1)} µs CPU per ms`, ...[...b.commandsPerMs].map(([k, v]) => `${k} ${(v * 1000).toFixed(1)}/s`)].join(
    ', ',
  );

async function deviceAcks(devices: Devices): Promise<number> {
  const stats = await Promise.all(devices.procs.map((p) => p.request<{ acks: number }>('stats')));
  return stats.reduce((n, s) => n + s.acks, 0);
}

function listInbox(server: BenchServer, userId: string): Promise<ListInboxResponse> {
  return new Promise((resolve, reject) =>
    server.client.listInbox({ userId, pageSize: 0, pageToken: '' }, (err, res) => (err ? reject(err) : resolve(res))),
  );
}
