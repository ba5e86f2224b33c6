/**
 * A server process of the bench, so its CPU (/proc/<pid>/stat) and RSS are its own: `pushgate`
 * (the App main.ts runs, configured from PUSHGATE_* / REDIS_URL in the environment) or `floor`
 * (bench/baseline-server.ts: bare Socket.IO + the same JWT check, optionally the minimal Redis
 * composition from BENCH_FLOOR_REDIS_URL). Sends {op:'ready', httpUrl, grpcAddress} once listening.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';
import type { Server as IoServer } from 'socket.io';
import type { App } from '../../src/app.js';
import { TEST_SECRET } from '../../test/support/tokens.js';
import { startBaseline } from '../baseline-server.js';
import { serve } from './children.js';
import { profilerOps } from './profiler.js';

const kind = process.argv[2];

// pushgate runs from its build (dist/, as `npm start` and the Dockerfile run it; bench/run.ts builds
// first): under tsx every closure also pays esbuild's keepNames helper when created, a per-push cost
// production never pays. BENCH_FROM_SOURCE=1 runs src/ instead (no build needed).
const from = process.env.BENCH_FROM_SOURCE === '1' ? '../../src/' : '../../dist/';
const { App: AppClass } = (await import(`${from}app.js`)) as typeof import('../../src/app.js');
const { parseConfig } = (await import(`${from}config/config.js`)) as typeof import('../../src/config/config.js');
const { createLogger } = (await import(`${from}logger.js`)) as typeof import('../../src/logger.js');

async function start(): Promise<{ httpUrl: string; grpcAddress: string; io?: IoServer; app?: App }> {
  if (kind === 'floor') {
    const redisUrl = process.env.BENCH_FLOOR_REDIS_URL;
    const floor = await startBaseline({ jwtSecret: TEST_SECRET, ...(redisUrl && { redisUrl }) });
    return { ...floor, io: floor.io };
  }
  if (kind !== 'pushgate') throw new Error(`server kind must be pushgate or floor, got "${kind}"`);
  const config = parseConfig([], {
    PUSHGATE_GRPC_PORT: '0',
    PUSHGATE_HTTP_PORT: '0',
    PUSHGATE_HOST: '127.0.0.1',
    PUSHGATE_JWT_SECRET: TEST_SECRET,
    PUSHGATE_MAX_SESSIONS_PER_USER: '0',
    ...(Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('PUSHGATE_') || k === 'REDIS_URL')) as Record<
      string,
      string
    >),
  });
  const app = new AppClass(config, createLogger(process.env.LOG_LEVEL ?? 'warn'));
  const ports = await app.start();
  return { httpUrl: `http://127.0.0.1:${ports.httpPort}`, grpcAddress: `127.0.0.1:${ports.grpcPort}`, app };
}

const server = await start();
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
serve({
  /** Floor of a batch: emit to every socket with an ack callback; answers when all have acked. */
  async emitAll(body) {
    const sockets = [...server.io!.sockets.sockets.values()];
    let acked = 0;
    await new Promise<void>((resolve) => {
      if (sockets.length === 0) resolve();
      for (const socket of sockets) {
        socket.emit(String(body.event), body.data, () => {
          if (++acked === sockets.length) resolve();
        });
      }
    });
    return { acked };
  },
  gc() {
    (globalThis as { gc?: () => void }).gc?.();
    return {};
  },
  /** Writes a heap snapshot to `body.path` (what the idle sessions hold, by constructor). */
  heapSnapshot(body) {
    writeHeapSnapshot(String(body.path));
    return {};
  },
  subscribers: () => ({ count: server.app?.registry.subscriberCount() ?? 0 }),
  /**
   * What a node holds that must go back to zero when its clients and callers are gone (the
   * reliability suite's leak checks), and its memory and event-loop delay. With `gc`, collects first.
   */
  internals(body) {
    if (body.gc === true) (globalThis as { gc?: () => void }).gc?.();
    const resources = process.getActiveResourcesInfo();
    const eld = { p99Ms: loopDelay.percentile(99) / 1e6, maxMs: loopDelay.max / 1e6 };
    if (body.resetDelay === true) loopDelay.reset();
    return {
      localSessions: server.app?.local.size ?? 0,
      pendingWaits: server.app?.local.pendingWaits() ?? 0,
      presenceSubscribers: server.app?.registry.subscriberCount() ?? 0,
      callsInFlight: server.app?.callsInFlight ?? 0,
      sockets: server.app === undefined ? 0 : server.app.edge.io.of('/').sockets.size,
      timers: resources.filter((kind) => kind === 'Timeout').length,
      handles: resources.length,
      heapUsed: process.memoryUsage().heapUsed,
      rss: process.memoryUsage.rss(),
      loopDelay: eld,
    };
  },
  ...profilerOps(),
});
process.send!({ op: 'ready', httpUrl: server.httpUrl, grpcAddress: server.grpcAddress });
