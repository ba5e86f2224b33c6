/**
 * A server process of the bench, so its CPU (/proc/<pid>/stat) and RSS are its own: `pushgate`
 * (the App main.ts runs, configured from PUSHGATE_* / REDIS_URL in the environment) or `floor`
 * (bench/baseline-server.ts: bare Socket.IO + the same JWT check, optionally the minimal Redis
 * composition from BENCH_FLOOR_REDIS_URL). Sends {op:'ready', httpUrl, grpcAddress} once listening.
 */
import type { Server as IoServer } from 'socket.io';
import { App } from '../../src/app.js';
import { parseConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/logger.js';
import { TEST_SECRET } from '../../test/support/tokens.js';
import { startBaseline } from '../baseline-server.js';
import { serve } from './children.js';

const kind = process.argv[2];

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
  const app = new App(config, createLogger(process.env.LOG_LEVEL ?? 'warn'));
  const ports = await app.start();
  return { httpUrl: `http://127.0.0.1:${ports.httpPort}`, grpcAddress: `127.0.0.1:${ports.grpcPort}`, app };
}

const server = await start();
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
  subscribers: () => ({ count: server.app?.registry.subscriberCount() ?? 0 }),
});
process.send!({ op: 'ready', httpUrl: server.httpUrl, grpcAddress: server.grpcAddress });
