import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { createLogger } from '../../src/logger.js';
import type { RedisClient } from '../../src/redis/client.js';
import { RegistryKeys } from '../../src/registry/redis-keys.js';
import { RedisSessionRegistry } from '../../src/registry/redis-registry.js';
import { startRedis, startRedisCluster, type TestRedis, type TestRedisCluster } from '../support/redis-server.js';
import { describeSessionRegistry, type RetentionOptions } from './session-registry.contract.js';

/**
 * The SessionRegistry contract against a real Redis: a private redis-server with one shard and with
 * several (cursors then hold one position per shard), and a real three-master Redis Cluster, where
 * any script touching keys of two slots would fail with CROSSSLOT.
 */

let redis: TestRedis;
let cluster: TestRedisCluster;
const clients: RedisClient[] = [];
let prefixes = 0;

beforeAll(async () => {
  [redis, cluster] = await Promise.all([startRedis(), startRedisCluster(3)]);
}, 30_000);

afterAll(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  await Promise.all([redis?.stop(), cluster?.stop()]);
});

/** A started registry on its own key prefix, so tests never see each other's keys. */
async function registry(client: () => RedisClient, shards: number, options: RetentionOptions): Promise<RedisSessionRegistry> {
  const command = client();
  clients.push(command);
  const registry = new RedisSessionRegistry({
    client: command,
    openReader: () => {
      const reader = client();
      clients.push(reader);
      return reader;
    },
    keys: new RegistryKeys(`test${++prefixes}:`, shards),
    nodeId: 'node-a',
    retention: options.retention,
    retentionMs: options.retentionMs,
    touchFlushMs: 20,
    log: createLogger('silent'),
  });
  await registry.start();
  return registry;
}

describeSessionRegistry('RedisSessionRegistry (one shard)', (options) => registry(() => new Redis(redis.url), 1, options));
describeSessionRegistry('RedisSessionRegistry (three shards)', (options) => registry(() => new Redis(redis.url), 3, options));
describeSessionRegistry('RedisSessionRegistry (Redis Cluster, four shards)', (options) => registry(() => cluster.client(), 4, options));
