import { type BenchServer, benchRedis, settle, sleep, startDevices, startServer } from '../lib/fixtures.js';
import { cpuMs, median, perOp, type Row, redisDelta, redisIdleCpuPerMs, redisSnapshot, type ScenarioResult } from '../lib/measure.js';

/**
 * connect storm — N sessions (2 per user) connecting as fast as the server accepts them from two
 * device processes (100 handshakes in flight each), token verification and registration included,
 * then all disconnecting; server CPU per connect and per disconnect for pushgate (memory and
 * Redis registry) against a bare Socket.IO server verifying the same JWT with jose. Redis
 * commands and CPU per connect and disconnect from INFO deltas.
 */
export async function connectStorm(quick: boolean): Promise<ScenarioResult> {
  const count = quick ? 400 : 5000;
  const rounds = quick ? 1 : 3;
  const users = Array.from({ length: count }, (_, i) => `storm-${i >> 1}`);
  const redis = await benchRedis();
  const quiet = { PUSHGATE_REAP_INTERVAL_MS: '600000', PUSHGATE_NODE_LEASE_MS: '600000', PUSHGATE_PING_INTERVAL_MS: '600000' };
  const servers = [
    await startServer('pushgate memory', 'pushgate', quiet),
    await startServer('pushgate redis', 'pushgate', { ...quiet, REDIS_URL: redis.url, PUSHGATE_REDIS_PREFIX: 'storm:' }),
    await startServer('bare Socket.IO + JWT', 'floor'),
  ];
  const devices = await startDevices(2);
  const idlePerMs = await redisIdleCpuPerMs(redis.client, quick ? 1000 : 3000);
  const figures = new Map<BenchServer, { connectUs: number[]; disconnectUs: number[]; rate: number[] }>(
    servers.map((s) => [s, { connectUs: [], disconnectUs: [], rate: [] }]),
  );
  const redisCounts = {
    connect: new Map<string, number>(),
    disconnect: new Map<string, number>(),
    connectCpuMs: 0,
    disconnectCpuMs: 0,
    storms: 0,
  };
  const add = (into: Map<string, number>, from: Map<string, number>): void => {
    for (const [name, n] of from) if (name !== 'xread') into.set(name, (into.get(name) ?? 0) + n);
  };
  try {
    for (const server of servers) {
      await devices.connect(server.httpUrl, users.slice(0, 200)); // warm-up
      await devices.closeAll();
    }
    await sleep(500);
    for (let round = 0; round < rounds; round++) {
      for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
        const f = figures.get(server)!;
        const counted = server.name === 'pushgate redis';
        const r0 = await redisSnapshot(redis.client);
        const c0 = cpuMs(server.pid);
        const t0 = performance.now();
        const { ms } = await devices.connect(server.httpUrl, users);
        await settle(server.pid); // registration writes that finish after the client saw its connect
        const c1 = cpuMs(server.pid);
        const r1 = await redisSnapshot(redis.client);
        const t1 = performance.now();
        await devices.closeAll();
        await settle(server.pid);
        const c2 = cpuMs(server.pid);
        const r2 = await redisSnapshot(redis.client);
        const t2 = performance.now();
        f.connectUs.push(((c1 - c0) * 1000) / count);
        f.disconnectUs.push(((c2 - c1) * 1000) / count);
        f.rate.push(count / (ms / 1000));
        if (counted) {
          const [up, down] = [redisDelta(r0, r1), redisDelta(r1, r2)];
          add(redisCounts.connect, up.commands);
          add(redisCounts.disconnect, down.commands);
          redisCounts.connectCpuMs += up.cpuMs - idlePerMs * (t1 - t0);
          redisCounts.disconnectCpuMs += down.cpuMs - idlePerMs * (t2 - t1);
          redisCounts.storms++;
        }
      }
    }
    const floor = figures.get(servers[2]!)!;
    const rows: Row[] = servers.map((s) => {
      const f = figures.get(s)!;
      return {
        target: s.name,
        'connects/s': median(f.rate),
        'CPU µs/connect': median(f.connectUs),
        'CPU µs/disconnect': median(f.disconnectUs),
        'connect ×floor': median(f.connectUs) / median(floor.connectUs),
      };
    });
    const sessions = redisCounts.storms * count;
    const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
    rows.push(
      {
        target: 'Redis per connect',
        'CPU µs/connect': (redisCounts.connectCpuMs * 1000) / sessions,
        'Redis cmds': total(redisCounts.connect) / sessions,
        commands: perOp(redisCounts.connect, sessions),
      },
      {
        target: 'Redis per disconnect',
        'CPU µs/disconnect': (redisCounts.disconnectCpuMs * 1000) / sessions,
        'Redis cmds': total(redisCounts.disconnect) / sessions,
        commands: perOp(redisCounts.disconnect, sessions),
      },
    );
    const ratio = (i: number): number => rows[i]!['connect ×floor'] as number;
    return {
      scenario: 'connect',
      title: `connect storm: ${count} sessions (2 per user) from 2 device processes, ${rounds} round(s), alternating`,
      rows,
      inputs: {
        'server CPU µs per connect (memory)': rows[0]!['CPU µs/connect'] as number,
        'server CPU µs per connect (redis)': rows[1]!['CPU µs/connect'] as number,
        'server CPU µs per disconnect (redis)': rows[1]!['CPU µs/disconnect'] as number,
        'Redis commands per connect': rows[3]!['Redis cmds'] as number,
        'Redis CPU µs per connect': rows[3]!['CPU µs/connect'] as number,
        'Redis commands per disconnect': rows[4]!['Redis cmds'] as number,
        'Redis CPU µs per disconnect': rows[4]!['CPU µs/disconnect'] as number,
      },
      notes: [
        `targets: memory ${ratio(0).toFixed(2)}× (≤ 1.2×: ${ratio(0) <= 1.2 ? 'met' : 'MISSED'}); redis ${ratio(1).toFixed(2)}× (≤ 1.4×: ${ratio(1) <= 1.4 ? 'met' : 'MISSED'})`,
        `Redis CPU has redis-server's idle rate (${(idlePerMs * 1000).toFixed(1)} µs per ms) subtracted`,
        'CPU per connect includes the engine.io handshake, websocket upgrade, JWT verification and registration; per disconnect, the close and unregistration (each sampled once the server process has gone idle again)',
      ],
    };
  } finally {
    await devices.stop();
    for (const s of servers) await s.stop();
    await redis.stop();
  }
}
