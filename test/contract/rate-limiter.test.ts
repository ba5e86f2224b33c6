import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import type { Rate } from '../../src/domain/rate-limiter.js';
import { isPushgateError } from '../../src/errors.js';
import { MemoryRateLimiter } from '../../src/limits/memory-rate-limiter.js';
import { RedisRateLimiter } from '../../src/limits/redis-rate-limiter.js';
import type { RedisClient } from '../../src/redis/client.js';
import type { TestRedis } from '../support/redis-server.js';
import { redisTargets } from '../support/redis-targets.js';
import { waitFor } from '../support/wait.js';
import { describeRateLimiter } from './rate-limiter.contract.js';

/**
 * The RateLimiter contract on memory, on a private redis-server and on a real three-master Redis
 * Cluster, with command connections opened as the app opens them (no offline queue, a command
 * timeout). Then what only the Redis limiter has: one bucket for every node, its key layout, and
 * `registry_unavailable` rather than a wait when Redis is away.
 */

const { redis, cluster, commandTimeoutMs: COMMAND_TIMEOUT_MS, config, connect, ownServer } = redisTargets('rate-test');
let prefixes = 0;

const standalone = (): Promise<RedisClient> => connect(config(redis()));
const clustered = (): Promise<RedisClient> => connect(config(cluster()));

describeRateLimiter('MemoryRateLimiter', async () => new MemoryRateLimiter());
describeRateLimiter(
  'RedisRateLimiter (one redis-server)',
  async () => new RedisRateLimiter({ client: await standalone(), keyPrefix: `rl${++prefixes}:` }),
);
describeRateLimiter(
  'RedisRateLimiter (Redis Cluster, three masters)',
  async () => new RedisRateLimiter({ client: await clustered(), keyPrefix: `rl${++prefixes}:` }),
);

const rate: Rate = { perSecond: 10, burst: 5 };

describe.each([
  ['one redis-server', standalone],
  ['Redis Cluster', clustered],
])('RedisRateLimiter on several nodes (%s)', (_, connect) => {
  it('draws every node’s calls from one bucket: a caller’s burst spent on one node is spent on all', async () => {
    const keyPrefix = `shared${++prefixes}:`;
    const nodeA = new RedisRateLimiter({ client: await connect(), keyPrefix });
    const nodeB = new RedisRateLimiter({ client: await connect(), keyPrefix });

    // A refusal only proves something while no token can have come back: retry a slowed run.
    let outcome: { spent: number[]; hintB: number } | undefined;
    for (let run = 1; outcome === undefined && run <= 5; run++) {
      const since = performance.now();
      const spent = await Promise.all(Array.from({ length: rate.burst }, () => nodeA.consume(`caller-${run}`, rate)));
      const hintB = await nodeB.consume(`caller-${run}`, rate);
      if (performance.now() - since < 1000 / rate.perSecond) outcome = { spent, hintB };
    }

    expect(outcome?.spent).toEqual(Array(rate.burst).fill(0));
    expect(outcome?.hintB).toBeGreaterThan(0);
    expect(await nodeB.consume('another caller', rate)).toBe(0);
    await Promise.all([nodeA.close(), nodeB.close()]);
  });
});

describe('RedisRateLimiter on Redis', () => {
  it('keeps a bucket at <prefix>ratelimit:<perSecond>/<burst>:{<key>}, expiring once it is full again', async () => {
    const limiter = new RedisRateLimiter({ client: await standalone(), keyPrefix: 'layout:' });
    await limiter.consume('caller-1', rate);
    await limiter.consume('caller-1', { perSecond: 20, burst: 3 });
    const probe = redis().client();

    expect((await probe.keys('layout:*')).sort()).toEqual(['layout:ratelimit:10/5:{caller-1}', 'layout:ratelimit:20/3:{caller-1}']);
    const ttl = await probe.pttl('layout:ratelimit:10/5:{caller-1}');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1000 / rate.perSecond);
    await limiter.close();
  });

  /** A command connection to a redis-server of the test's own, and a limiter that has already answered once. */
  async function limiterOnOwnServer(): Promise<{ server: TestRedis; client: RedisClient; limiter: RedisRateLimiter }> {
    const server = await ownServer();
    const client = await connect(config(server));
    const limiter = new RedisRateLimiter({ client, keyPrefix: 'away:' });
    expect(await limiter.consume('caller', rate)).toBe(0);
    return { server, client, limiter };
  }

  /** How consume failed, and after how long. */
  async function failure(limiter: RedisRateLimiter): Promise<{ error: unknown; elapsedMs: number }> {
    const started = performance.now();
    const error = await limiter.consume('caller', rate).then(
      () => undefined,
      (err: unknown) => err,
    );
    return { error, elapsedMs: performance.now() - started };
  }

  it('rejects with registry_unavailable within the command timeout when Redis does not answer', async () => {
    const { server, limiter } = await limiterOnOwnServer();
    await server.pause(10 * COMMAND_TIMEOUT_MS);

    const { error, elapsedMs } = await failure(limiter);

    expect(isPushgateError(error) && error.code).toBe('registry_unavailable');
    expect((error as Error).message).toContain('did not answer in time');
    // Well before the pause ends: the command timeout cut the call short.
    expect(elapsedMs).toBeLessThan(COMMAND_TIMEOUT_MS + 1000);
  });

  it('rejects with registry_unavailable at once when Redis is gone, without queueing the call', async () => {
    const { server, client, limiter } = await limiterOnOwnServer();
    await server.stop();
    await waitFor('the client to see Redis gone', () => client.status !== 'ready');

    const { error, elapsedMs } = await failure(limiter);

    expect(isPushgateError(error) && error.code).toBe('registry_unavailable');
    expect((error as Error).message).toContain('not connected to Redis');
    expect(elapsedMs).toBeLessThan(COMMAND_TIMEOUT_MS);
  });
});
