import { spawnSync } from 'node:child_process';
import { credentials, Metadata } from '@grpc/grpc-js';
import type { Redis } from 'ioredis';
import { PushServiceClient, type PushToUserRequest, type PushToUserResponse } from '../../src/gen/pushgate/v1/push_service.js';
import { startRedis } from '../../test/support/redis-server.js';
import { type Child, onExit, spawnChild } from './children.js';
import { cpuMs } from './measure.js';

export interface BenchServer {
  readonly name: string;
  readonly child: Child;
  readonly pid: number;
  readonly httpUrl: string;
  readonly grpcAddress: string;
  readonly client: PushServiceClient;
  stop(): Promise<void>;
}

/** Starts a server process (lib/server.ts): `pushgate` with `env` (PUSHGATE_*, REDIS_URL) or `floor`. */
export async function startServer(name: string, kind: 'pushgate' | 'floor', env: Record<string, string> = {}): Promise<BenchServer> {
  const child = spawnChild(new URL('./server.ts', import.meta.url), [kind], env, ['--expose-gc']);
  const ready = (await child.ready) as { httpUrl: string; grpcAddress: string };
  const client = new PushServiceClient(ready.grpcAddress, credentials.createInsecure());
  return {
    name,
    child,
    pid: child.pid,
    httpUrl: ready.httpUrl,
    grpcAddress: ready.grpcAddress,
    client,
    async stop() {
      client.close();
      await child.kill();
    },
  };
}

export interface Devices {
  readonly procs: Child[];
  /** Connects users[i] to `url`, spread over the device processes (each bound to its own 127.0.0.x). */
  connect(url: string, users: string[], concurrency?: number): Promise<{ ms: number; failed: number }>;
  closeAll(): Promise<void>;
  stop(): Promise<void>;
}

/** Device processes (lib/device.ts); process i binds its sockets to 127.0.0.(2 + i % 8). */
export async function startDevices(count: number): Promise<Devices> {
  const procs = Array.from({ length: count }, () => spawnChild(new URL('./device.ts', import.meta.url), []));
  await Promise.all(procs.map((p) => p.ready));
  return {
    procs,
    async connect(url, users, concurrency = 100) {
      const parts = procs.map((_, i) => users.filter((__, j) => j % procs.length === i));
      const answers = await Promise.all(
        procs.map((p, i) =>
          p.request<{ ms: number; failed: number; firstError: string }>(
            'connect',
            { url, users: parts[i], concurrency, localAddress: `127.0.0.${2 + (i % 8)}` },
            600_000,
          ),
        ),
      );
      const failed = answers.reduce((n, a) => n + a.failed, 0);
      if (failed > 0)
        throw new Error(`${failed} of ${users.length} sessions failed to connect: ${answers.find((a) => a.firstError)?.firstError}`);
      return { ms: Math.max(...answers.map((a) => a.ms)), failed };
    },
    async closeAll() {
      await Promise.all(procs.map((p) => p.request('closeAll')));
    },
    async stop() {
      await Promise.all(procs.map((p) => p.kill()));
    },
  };
}

/** A private redis-server for the bench (never 6379), stopped at exit and on Ctrl-C, and a client to it. */
export async function benchRedis(): Promise<{ url: string; client: Redis; stop(): Promise<void> }> {
  const redis = await startRedis();
  onExit(() => redis.stop());
  return { url: redis.url, client: redis.client(), stop: () => redis.stop() };
}

export function pushToUser(client: PushServiceClient, request: PushToUserRequest): Promise<PushToUserResponse> {
  return new Promise((resolve, reject) => client.pushToUser(request, new Metadata(), {}, (err, res) => (err ? reject(err) : resolve(res))));
}

/** Waits until `check()` holds, polling; throws naming `what` after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until a process has gone idle (at most one 10 ms CPU tick in 300 ms): the end of the work
 * a burst set off, such as registrations and unregistrations finishing after the clients saw theirs.
 */
export async function settle(pid: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = cpuMs(pid);
  for (;;) {
    await sleep(300);
    const now = cpuMs(pid);
    if (now - last <= 10) return;
    if (Date.now() > deadline) throw new Error(`process ${pid} still busy ${timeoutMs} ms after the burst`);
    last = now;
  }
}

/** The pushgate servers run from dist/ (see lib/server.ts), so it must hold what src/ holds now. */
export function buildFirst(): void {
  if (process.env.BENCH_FROM_SOURCE === '1') return;
  const built = spawnSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
  if (built.status !== 0)
    throw new Error('npm run build failed: the bench runs pushgate from dist/ (BENCH_FROM_SOURCE=1 runs src/ under tsx instead)');
}
