import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { RegistryKeys } from '../../src/registry/redis-keys.js';
import { RedisSessionRegistry } from '../../src/registry/redis-registry.js';
import { startRedis, type TestRedis } from './redis-server.js';
import { waitFor } from './wait.js';

/** What a Redis registry test file gets: its own redis-server, connections, and nodes. */
export interface RedisRegistryHarness {
  redis(): TestRedis;
  /** As cluster mode connects: commands fail fast (no queue, a timeout); stream readers block. */
  connect(role?: 'command' | 'reader'): Redis;
  /**
   * Registries (nodes) sharing one fresh key prefix, as nodes of one deployment do; node i is
   * `node-<letter>`. Closed after each test.
   */
  nodes(count: number, options?: NodeOptions): Promise<{ registries: RedisSessionRegistry[]; keys: RegistryKeys; prefix: string }>;
  /** Runs after each test, before the registries close (e.g. stopping memberships). */
  onCleanup(cleanup: () => unknown): void;
}

export interface NodeOptions {
  readonly retention?: number;
  readonly shards?: number;
  /** Where the registries log (JSON lines), at warn level; silent when omitted. */
  readonly logTo?: { write(line: string): void };
}

/** Binds the hooks of a test file: a redis-server for the file, everything else per test. */
export function redisRegistryHarness(prefixName: string, commandTimeoutMs: number): RedisRegistryHarness {
  let redis: TestRedis;
  let prefixes = 0;
  const clients: Redis[] = [];
  const registries: RedisSessionRegistry[] = [];
  const cleanups: (() => unknown)[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    for (const registry of registries.splice(0)) await registry.close();
    for (const client of clients.splice(0)) client.disconnect();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  function connect(role: 'command' | 'reader' = 'command'): Redis {
    const client = redis.client(
      role === 'command' ? { maxRetriesPerRequest: 0, commandTimeout: commandTimeoutMs, enableOfflineQueue: false } : {},
    );
    clients.push(client);
    return client;
  }

  async function nodes(count: number, { retention = 1000, shards = 1, logTo }: NodeOptions = {}) {
    const prefix = `${prefixName}${++prefixes}:`;
    const keys = new RegistryKeys(prefix, shards);
    const started: RedisSessionRegistry[] = [];
    for (let i = 0; i < count; i++) {
      const client = connect();
      await waitFor('the command connection', () => client.status === 'ready');
      const registry = new RedisSessionRegistry({
        client,
        openReader: () => connect('reader'),
        keys,
        nodeId: `node-${String.fromCharCode(97 + i)}`,
        retention,
        retentionMs: 600_000,
        touchFlushMs: 20,
        log: logTo === undefined ? createLogger('silent') : createLogger('warn', logTo),
      });
      await registry.start();
      registries.push(registry);
      started.push(registry);
    }
    return { registries: started, keys, prefix };
  }

  return { redis: () => redis, connect, nodes, onCleanup: (cleanup) => cleanups.push(cleanup) };
}
