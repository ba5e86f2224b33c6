import type { Redis } from 'ioredis';
import { PushToUserRequest } from '../../src/gen/pushgate/v1/push_service.js';
import { type BenchServer, benchRedis, pushToUser, sleep, startDevices, startServer } from '../lib/fixtures.js';
import {
  cpuMs,
  median,
  percentile,
  perOp,
  type Row,
  redisDelta,
  redisIdleCpuPerMs,
  redisSnapshot,
  type ScenarioResult,
} from '../lib/measure.js';

/** Redis commands no push sends: each pushgate node's presence reader blocks in XREAD (returns every 5 s when idle). */
const BACKGROUND = new Set(['xread']);
/** Background timers (lease, reap, pongs) off while pushes are counted: none is on the push path. */
const QUIET = { PUSHGATE_NODE_LEASE_MS: '600000', PUSHGATE_REAP_INTERVAL_MS: '600000', PUSHGATE_PING_INTERVAL_MS: '600000' };
const SESSIONS = 3;
const CONCURRENCY = 32;

interface Tally {
  readonly latencies: number[];
  readonly rates: number[];
  readonly cpuUs: number[];
  readonly redisUs: number[];
  readonly commands: Map<string, number>;
  pushes: number;
}

/** PushToUser to 3 sessions, memory registry: pushgate vs bench/baseline-server.ts. */
export function pushMemory(quick: boolean): Promise<ScenarioResult> {
  return pushScenario(quick, undefined);
}

/** The same in Redis mode: pushgate on a private redis-server vs the minimal Redis composition (SMEMBERS + HMGET per push). */
export async function pushRedis(quick: boolean): Promise<ScenarioResult> {
  const redis = await benchRedis();
  try {
    const idlePerMs = await redisIdleCpuPerMs(redis.client, quick ? 1000 : 3000);
    const result = await pushScenario(quick, { ...redis, idlePerMs });
    const idle = await idleCosts(quick, { ...redis, idlePerMs });
    return {
      ...result,
      rows: [...result.rows, ...idle.rows],
      inputs: { ...result.inputs, ...idle.inputs },
      notes: [...result.notes, ...idle.notes],
    };
  } finally {
    await redis.stop();
  }
}

async function pushScenario(
  quick: boolean,
  redis: { url: string; client: Redis; idlePerMs?: number } | undefined,
): Promise<ScenarioResult> {
  const calls = quick ? 200 : 2000;
  const rounds = quick ? 2 : 4;
  const mode = redis === undefined ? 'memory' : 'redis';
  const pushgate = await startServer(
    'pushgate',
    'pushgate',
    redis ? { REDIS_URL: redis.url, PUSHGATE_REDIS_PREFIX: 'bench:', ...QUIET } : QUIET,
  );
  const floor = await startServer('floor', 'floor', redis ? { BENCH_FLOOR_REDIS_URL: redis.url } : {});
  const devices = await startDevices(1);
  const request = PushToUserRequest.fromPartial({
    userId: 'bench-user',
    event: 'notice',
    data: { title: 'approve', id: 42 },
    ackTimeoutMs: 5000,
  });
  try {
    for (const server of [pushgate, floor]) await devices.connect(server.httpUrl, Array(SESSIONS).fill('bench-user'));
    const push = async (server: BenchServer): Promise<void> => {
      const response = await pushToUser(server.client, request);
      if (response.acked !== SESSIONS) throw new Error(`${server.name}: expected ${SESSIONS} acks, got ${response.acked}`);
    };
    const tallies = new Map<BenchServer, Tally>(
      [pushgate, floor].map((s) => [s, { latencies: [], rates: [], cpuUs: [], redisUs: [], commands: new Map(), pushes: 0 }]),
    );
    const measure = async (server: BenchServer): Promise<void> => {
      const tally = tallies.get(server)!;
      const redisBefore = redis && (await redisSnapshot(redis.client));
      const cpuBefore = cpuMs(server.pid);
      const roundStart = performance.now();
      for (let i = 0; i < calls; i++) {
        const started = performance.now();
        await push(server);
        tally.latencies.push(performance.now() - started);
      }
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next++ < calls) await push(server);
        }),
      );
      tally.rates.push(calls / ((performance.now() - started) / 1000));
      tally.cpuUs.push(((cpuMs(server.pid) - cpuBefore) * 1000) / (2 * calls));
      if (redis && redisBefore) {
        const delta = redisDelta(redisBefore, await redisSnapshot(redis.client));
        const idleMs = (redis.idlePerMs ?? 0) * (performance.now() - roundStart);
        tally.redisUs.push(((delta.cpuMs - idleMs) * 1000) / (2 * calls));
        for (const [name, n] of delta.commands) if (!BACKGROUND.has(name)) tally.commands.set(name, (tally.commands.get(name) ?? 0) + n);
        tally.pushes += 2 * calls;
      }
    };
    for (const server of [pushgate, floor]) for (let i = 0; i < (quick ? 100 : 500); i++) await push(server); // warm-up
    for (let round = 0; round < rounds; round++)
      for (const server of round % 2 === 0 ? [pushgate, floor] : [floor, pushgate]) await measure(server);

    const row = (server: BenchServer): Row => {
      const t = tallies.get(server)!;
      const commands = [...t.commands.values()].reduce((a, b) => a + b, 0);
      return {
        target: server.name,
        'p50 ms': percentile(t.latencies, 50),
        'p99 ms': percentile(t.latencies, 99),
        'pushes/s @32': median(t.rates),
        'server CPU µs/push': median(t.cpuUs),
        ...(redis && {
          'Redis CPU µs/push': median(t.redisUs),
          'Redis cmds/push': commands / t.pushes,
          'commands per push': perOp(t.commands, t.pushes),
        }),
      };
    };
    const [ours, base] = [row(pushgate), row(floor)];
    const ratio: Row = { target: 'ratio' };
    for (const key of Object.keys(ours)) if (typeof ours[key] === 'number') ratio[key] = (ours[key] as number) / (base[key] as number);
    const r = (key: string): number => ratio[key] as number;
    const verdict = (key: string, max: number): string => `${key} ${r(key).toFixed(2)}× (≤ ${max}×: ${r(key) <= max ? 'met' : 'MISSED'})`;
    const targets =
      mode === 'memory'
        ? [verdict('p50 ms', 1.05), verdict('p99 ms', 1.15), verdict('server CPU µs/push', 1.0)]
        : [verdict('p50 ms', 1.05), verdict('p99 ms', 1.2), verdict('server CPU µs/push', 1.05), verdict('Redis CPU µs/push', 1.0)];
    return {
      scenario: mode === 'memory' ? 'push' : 'redis',
      title: `PushToUser to ${SESSIONS} sessions, ${mode} registry: pushgate vs the floor (${rounds} rounds × ${calls} sequential + ${calls} at ${CONCURRENCY} in flight)`,
      rows: [ours, base, ratio],
      inputs: {
        [`server CPU µs per push (${mode}, 3 sessions)`]: ours['server CPU µs/push'] as number,
        ...(redis && {
          'Redis CPU µs per push (3 sessions)': ours['Redis CPU µs/push'] as number,
          'Redis commands per push': ours['Redis cmds/push'] as number,
        }),
      },
      notes: [`targets: ${targets.join('; ')}`, 'server CPU covers the sequential and the concurrent calls of each round'],
    };
  } finally {
    await devices.stop();
    await pushgate.stop();
    await floor.stop();
  }
}

/**
 * Redis cost of a node idling with N sessions: lease renewals alone (pings off), then with
 * Socket.IO pings every second (each pong a last_seen_at touch, written in one batch per second).
 */
async function idleCosts(
  quick: boolean,
  redis: { url: string; client: Redis; idlePerMs: number },
): Promise<Pick<ScenarioResult, 'rows' | 'inputs' | 'notes'>> {
  const sessions = quick ? 100 : 1000;
  const seconds = quick ? 2 : 15;
  // A short lease (renewed every 500 ms) so a 15 s idle holds enough renewals to measure.
  const leaseMs = 1500;
  const measureIdle = async (pingMs: number) => {
    const env = {
      REDIS_URL: redis.url,
      PUSHGATE_REDIS_PREFIX: `idle${pingMs}:`,
      PUSHGATE_NODE_LEASE_MS: String(leaseMs),
      PUSHGATE_REDIS_COMMAND_TIMEOUT_MS: String(leaseMs / 2),
      PUSHGATE_REAP_INTERVAL_MS: '600000',
      PUSHGATE_PING_INTERVAL_MS: String(pingMs),
    };
    const server = await startServer(`idle-${pingMs}`, 'pushgate', env);
    const devices = await startDevices(1);
    try {
      await devices.connect(
        server.httpUrl,
        Array.from({ length: sessions }, (_, i) => `idle-${i}`),
      );
      await sleep(quick ? 1000 : 2000); // let the connects' writes and the first pongs settle
      const before = await redisSnapshot(redis.client);
      const started = performance.now();
      await sleep(seconds * 1000);
      const delta = redisDelta(before, await redisSnapshot(redis.client));
      delta.cpuMs -= redis.idlePerMs * (performance.now() - started);
      for (const name of BACKGROUND) delta.commands.delete(name);
      return { commands: [...delta.commands.values()].reduce((a, b) => a + b, 0), cpuMs: delta.cpuMs, breakdown: delta.commands };
    } finally {
      await devices.stop();
      await server.stop();
    }
  };
  const renewals = seconds / (leaseMs / 3 / 1000);
  const leaseOnly = await measureIdle(600_000);
  const withPings = await measureIdle(1000);
  const batches = seconds; // one touch flush per second (TOUCH_FLUSH_MS)
  const lease = { cmds: leaseOnly.commands / renewals, cpuUs: (leaseOnly.cpuMs * 1000) / renewals };
  const heartbeat = {
    cmds: (withPings.commands - leaseOnly.commands) / batches,
    cpuUs: ((withPings.cpuMs - leaseOnly.cpuMs) * 1000) / batches,
  };
  return {
    rows: [
      {
        target: 'lease renewal (idle node)',
        'Redis cmds/push': lease.cmds,
        'Redis CPU µs/push': lease.cpuUs,
        'commands per push': perOp(leaseOnly.breakdown, renewals),
      },
      {
        target: `heartbeat batch (${sessions} sessions, pings 1 s)`,
        'Redis cmds/push': heartbeat.cmds,
        'Redis CPU µs/push': heartbeat.cpuUs,
        'commands per push': perOp(withPings.breakdown, batches),
      },
    ],
    inputs: {
      'Redis commands per lease renewal': lease.cmds,
      'Redis CPU µs per lease renewal': lease.cpuUs,
      [`Redis commands per heartbeat batch (${sessions} sessions)`]: heartbeat.cmds,
      [`Redis CPU µs per heartbeat batch (${sessions} sessions)`]: heartbeat.cpuUs,
      'Redis CPU µs per session heartbeat': heartbeat.cpuUs / sessions,
    },
    notes: [
      `idle rows: one node, ${sessions} sessions, ${seconds} s, lease ${leaseMs} ms (renewed every ${leaseMs / 3} ms), reaper off; "per push" columns there mean per renewal / per batch; Redis CPU has redis-server's idle rate (${(redis.idlePerMs * 1000).toFixed(1)} µs per ms, measured with no client working) subtracted, in every Redis CPU figure of this table`,
    ],
  };
}
