/**
 * npm run bench — PushToUser latency and throughput of pushgate against the hand-written floor in
 * bench/baseline-server.ts, measured in the same run, interleaved, so the ratio means something
 * on a noisy machine. Reports ratios; absolute times are only comparable within one run.
 *
 * Options (env): BENCH_SESSIONS (3), BENCH_CALLS (3000 per round), BENCH_ROUNDS (4), BENCH_CONCURRENCY (32).
 */
import { credentials, Metadata } from '@grpc/grpc-js';
import { io, type Socket } from 'socket.io-client';
import { App } from '../src/app.js';
import { parseConfig } from '../src/config/config.js';
import { PushServiceClient, PushToUserRequest, type PushToUserResponse } from '../src/gen/pushgate/v1/push_service.js';
import { createLogger } from '../src/logger.js';
import { signToken, TEST_SECRET } from '../test/support/tokens.js';
import { startBaseline } from './baseline-server.js';

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 3);
const CALLS = Number(process.env.BENCH_CALLS ?? 3000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const CLIENT_TYPES = ['app', 'pc', 'web'];

interface Target {
  readonly name: string;
  readonly client: PushServiceClient;
}

function push(client: PushServiceClient, request: PushToUserRequest): Promise<PushToUserResponse> {
  return new Promise((resolve, reject) => client.pushToUser(request, new Metadata(), {}, (err, res) => (err ? reject(err) : resolve(res))));
}

async function connect(url: string, auth: Record<string, string>): Promise<Socket> {
  const socket = io(url, { auth, transports: ['websocket'], reconnection: false, forceNew: true });
  socket.onAny((...args: unknown[]) => {
    const ack = args[args.length - 1];
    if (typeof ack === 'function') ack({ ok: true });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return socket;
}

const request = PushToUserRequest.fromPartial({
  userId: 'bench-user',
  event: 'notice',
  data: { title: 'approve', id: 42 },
  ackTimeoutMs: 5000,
});

async function sequential(target: Target, calls: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    const response = await push(target.client, request);
    latencies.push(performance.now() - started);
    if (response.acked !== SESSIONS) throw new Error(`${target.name}: expected ${SESSIONS} acks, got ${response.acked}`);
  }
  return latencies;
}

async function throughput(target: Target, calls: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next++ < calls) await push(target.client, request);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return calls / ((performance.now() - started) / 1000);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const config = parseConfig([], {
    PUSHGATE_GRPC_PORT: '0',
    PUSHGATE_HTTP_PORT: '0',
    PUSHGATE_HOST: '127.0.0.1',
    PUSHGATE_JWT_SECRET: TEST_SECRET,
  });
  const app = new App(config, createLogger('warn'));
  const ports = await app.start();
  const baseline = await startBaseline();
  const sockets: Socket[] = [];
  for (let i = 0; i < SESSIONS; i++) {
    const clientType = CLIENT_TYPES[i % CLIENT_TYPES.length]!;
    sockets.push(await connect(`http://127.0.0.1:${ports.httpPort}`, { token: await signToken('bench-user'), clientType }));
    sockets.push(await connect(baseline.httpUrl, { userId: 'bench-user', clientType }));
  }
  const targets: Target[] = [
    { name: 'baseline', client: new PushServiceClient(baseline.grpcAddress, credentials.createInsecure()) },
    { name: 'pushgate', client: new PushServiceClient(`127.0.0.1:${ports.grpcPort}`, credentials.createInsecure()) },
  ];

  // Warm both up (JIT, connections), then alternate rounds so drift hits both alike.
  for (const target of targets) {
    await sequential(target, 500);
    await throughput(target, 500);
  }
  const latencies = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  const rates = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
      latencies.get(target.name)!.push(...(await sequential(target, CALLS)));
      rates.get(target.name)!.push(await throughput(target, CALLS));
    }
  }

  const row = (name: string): { p50: number; p99: number; rate: number } => ({
    p50: percentile(latencies.get(name)!, 50),
    p99: percentile(latencies.get(name)!, 99),
    rate: percentile(rates.get(name)!, 50),
  });
  const base = row('baseline');
  const ours = row('pushgate');
  console.log(`PushToUser to ${SESSIONS} sessions, ${ROUNDS} rounds × ${CALLS} calls, concurrency ${CONCURRENCY}`);
  console.log('target     p50 ms   p99 ms   calls/s');
  for (const [name, r] of [
    ['baseline', base],
    ['pushgate', ours],
  ] as const) {
    console.log(`${name.padEnd(9)} ${r.p50.toFixed(3).padStart(7)} ${r.p99.toFixed(3).padStart(8)} ${r.rate.toFixed(0).padStart(9)}`);
  }
  console.log(
    `ratio pushgate/baseline: p50 ${(ours.p50 / base.p50).toFixed(2)}×, p99 ${(ours.p99 / base.p99).toFixed(2)}×, throughput ${(ours.rate / base.rate).toFixed(2)}× (budget: p50 ≤ 1.20×)`,
  );

  for (const socket of sockets) socket.close();
  for (const target of targets) target.client.close();
  await baseline.stop();
  await app.stop();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
