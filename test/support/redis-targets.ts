import { afterAll, afterEach, beforeAll } from 'vitest';
import type { RedisConfig } from '../../src/config/config.js';
import type { RedisClient } from '../../src/redis/client.js';
import { type ConnectionRole, connectRedis, openRedis } from '../../src/redis/connection.js';
import { startRedis, startRedisCluster, type TestRedis, type TestRedisCluster } from './redis-server.js';

/**
 * What a contract test file that runs a port on both Redis topologies gets: a private redis-server
 * and a real three-master Redis Cluster for the whole file, configs as a node builds them from
 * REDIS_URL, and connections opened as the app opens them.
 */
export interface RedisTargets {
  /** The file's redis-server (started before its first test). */
  redis(): TestRedis;
  /** The file's three-master Redis Cluster. */
  cluster(): TestRedisCluster;
  /** The command timeout every config carries: a call to a Redis that does not answer fails after it. */
  readonly commandTimeoutMs: number;
  /** The settings a node would have on `server` (a redis-server, or a Cluster by its seed URLs). */
  config(server: TestRedis | TestRedisCluster): RedisConfig;
  /**
   * A connection opened and connected as a pushgate node does (for commands: no offline queue, the
   * command timeout); disconnected after the test.
   */
  connect(config: RedisConfig, role?: ConnectionRole): Promise<RedisClient>;
  /** A redis-server of the test's own, to stop or pause; stopped after the test, once its connections are gone. */
  ownServer(): Promise<TestRedis>;
}

/** Binds the hooks of a test file; `name` names its connections (CLIENT SETNAME `<name>-<n>`). */
export function redisTargets(name: string, commandTimeoutMs = 300): RedisTargets {
  let redis: TestRedis;
  let cluster: TestRedisCluster;
  let opened = 0;
  const clients: RedisClient[] = [];
  const servers: TestRedis[] = [];

  beforeAll(async () => {
    [redis, cluster] = await Promise.all([startRedis(), startRedisCluster(3)]);
  }, 30_000);
  afterEach(async () => {
    for (const client of clients.splice(0)) client.disconnect();
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });
  afterAll(async () => {
    await Promise.all([redis?.stop(), cluster?.stop()]);
  });

  function config(server: TestRedis | TestRedisCluster): RedisConfig {
    const isCluster = 'urls' in server;
    return {
      urls: isCluster ? server.urls : [server.url],
      cluster: isCluster,
      keyPrefix: 'unused:',
      shards: 1,
      commandTimeoutMs,
      leaseTtlMs: 10_000,
      reapIntervalMs: 1000,
      nodeReplyGraceMs: 1000,
    };
  }

  async function connect(config: RedisConfig, role: ConnectionRole = 'command'): Promise<RedisClient> {
    const client = openRedis(config, role, `${name}-${++opened}`);
    clients.push(client);
    await connectRedis(client, config, 5000);
    return client;
  }

  async function ownServer(): Promise<TestRedis> {
    const server = await startRedis();
    servers.push(server);
    return server;
  }

  return { redis: () => redis, cluster: () => cluster, commandTimeoutMs, config, connect, ownServer };
}
