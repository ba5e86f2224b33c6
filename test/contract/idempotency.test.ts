import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { isPushgateError } from '../../src/errors.js';
import { MemoryIdempotencyStore } from '../../src/idempotency/memory-idempotency.js';
import { RedisIdempotencyStore } from '../../src/idempotency/redis-idempotency.js';
import type { RedisClient } from '../../src/redis/client.js';
import type { TestRedis, TestRedisCluster } from '../support/redis-server.js';
import { redisTargets } from '../support/redis-targets.js';
import { waitFor } from '../support/wait.js';
import { describeIdempotencyStore, type IdempotencyDeployment, WatchedCancel } from './idempotency.contract.js';

/**
 * The IdempotencyStore contract on memory, on a private redis-server and on a three-master Redis
 * Cluster, with command connections opened as the app opens them (no offline queue, a command
 * timeout). Then what only one of them has: the Redis key layout and `registry_unavailable` when
 * Redis is away; the memory store forgetting ended keys without being asked.
 */

const { redis, cluster, commandTimeoutMs: COMMAND_TIMEOUT_MS, config, connect, ownServer } = redisTargets('idem-test');
let prefixes = 0;

/** Nodes of one deployment on Redis: a command connection and a store each, on one fresh prefix. */
function redisDeployment(server: () => TestRedis | TestRedisCluster): IdempotencyDeployment {
  const prefix = `idem${++prefixes}:`;
  const clients: RedisClient[] = [];
  return {
    async store() {
      const client = await connect(config(server()));
      clients.push(client);
      return new RedisIdempotencyStore({ client, prefix });
    },
    async close() {
      for (const client of clients) client.disconnect();
    },
  };
}

describeIdempotencyStore('MemoryIdempotencyStore', async () => {
  const store = new MemoryIdempotencyStore();
  return { store: async () => store, close: async () => undefined };
});
describeIdempotencyStore('RedisIdempotencyStore (one redis-server)', async () => redisDeployment(redis));
describeIdempotencyStore('RedisIdempotencyStore (Redis Cluster, three masters)', async () => redisDeployment(cluster));

describe('RedisIdempotencyStore on Redis', () => {
  async function storeOn(server: TestRedis, prefix: string): Promise<{ client: RedisClient; store: RedisIdempotencyStore }> {
    const client = await connect(config(server));
    return { client, store: new RedisIdempotencyStore({ client, prefix }) };
  }

  it('keeps a key at <prefix>idem:<key>, expiring with the lease, then with the window', async () => {
    const { store } = await storeOn(redis(), 'layout:');
    const probe = redis().client();
    const claim = await store.claim('7:user-1msg{1}', 5000);
    const key = 'layout:idem:7:user-1msg{1}';

    expect(await probe.keys('layout:*')).toEqual([key]);
    expect(await probe.pttl(key)).toBeGreaterThan(4000);
    expect(await probe.pttl(key)).toBeLessThanOrEqual(5000);
    await store.complete('7:user-1msg{1}', claim.kind === 'first' ? claim.token : '', 'r', 60_000);
    expect(await probe.pttl(key)).toBeGreaterThan(59_000);
    expect(await probe.get(key)).toBe('done:r');
  });

  it('stops reading a key the moment a wait ends: no poll is left scheduled after an abort or a result', async () => {
    const { client, store } = await storeOn(redis(), 'polls:');
    // Counted as each read is sent (a wait reads with GET, and nothing else here does).
    let reads = 0;
    const commands = client as unknown as { get(key: string): Promise<string | null> };
    const get = commands.get.bind(client);
    commands.get = (key) => {
      reads++;
      return get(key);
    };
    const claim = await store.claim('k', 60_000);
    const token = claim.kind === 'first' ? claim.token : '';
    /** Reads made from now until `ms` have passed. */
    const readsWithin = async (ms: number): Promise<number> => {
      const before = reads;
      await new Promise((resolve) => setTimeout(resolve, ms));
      return reads - before;
    };

    const signal = new WatchedCancel();
    const aborted = store.waitFor('k', signal).catch((err: unknown) => err);
    // Long enough for the pause between reads to have grown to pollMs (100 ms): a read is due soon.
    expect(await readsWithin(400)).toBeGreaterThan(3);
    signal.abort(new Error('gone'));
    expect(await aborted).toEqual(new Error('gone'));
    expect(await readsWithin(300)).toBe(0);

    const completed = store.waitFor('k', new WatchedCancel());
    await readsWithin(400);
    await store.complete('k', token, 'r', 60_000);
    expect(await completed).toBe('r');
    expect(await readsWithin(300)).toBe(0);
    expect(store.pendingWaits).toBe(0);
  });

  it('ends a pending wait with shutting_down at close, leaving nothing pending', async () => {
    const { store } = await storeOn(redis(), 'closing:');
    await store.claim('k', 60_000);
    const wait = store.waitFor('k', new WatchedCancel());
    await waitFor('the wait to poll', () => store.pendingWaits === 1);
    await store.close();

    await expect(wait).rejects.toMatchObject({ code: 'shutting_down' });
    expect(store.pendingWaits).toBe(0);
  });

  it('rejects every call with registry_unavailable at once when Redis is stopped, and a pending wait too', async () => {
    const server = await ownServer();
    const { client, store } = await storeOn(server, 'away:');
    const claim = await store.claim('k', 60_000);
    const token = claim.kind === 'first' ? claim.token : '';
    const wait = store.waitFor('k', new WatchedCancel()).then(
      () => undefined,
      (err: unknown) => err,
    );
    await server.stop();
    await waitFor('the client to see Redis gone', () => client.status !== 'ready');

    const started = performance.now();
    const errors = await Promise.all(
      [
        store.claim('k', 1000),
        store.complete('k', token, 'r', 1000),
        store.release('k', token),
        store.waitFor('other', new WatchedCancel()),
      ].map((call) =>
        call.then(
          () => undefined,
          (err: unknown) => err,
        ),
      ),
    );

    for (const error of [...errors, await wait]) {
      expect(isPushgateError(error) && error.code).toBe('registry_unavailable');
      expect((error as Error).message).toMatch(/^idempotency store unavailable/);
    }
    expect(performance.now() - started).toBeLessThan(COMMAND_TIMEOUT_MS + 1000);
    expect(store.pendingWaits).toBe(0);
  });

  it('rejects with registry_unavailable within the command timeout when Redis does not answer', async () => {
    const server = await ownServer();
    const { store } = await storeOn(server, 'paused:');
    await server.pause(10 * COMMAND_TIMEOUT_MS);

    const started = performance.now();
    const error = await store.claim('k', 1000).then(
      () => undefined,
      (err: unknown) => err,
    );

    expect(isPushgateError(error) && error.code).toBe('registry_unavailable');
    expect(performance.now() - started).toBeLessThan(COMMAND_TIMEOUT_MS + 1000);
  });
});

describe('MemoryIdempotencyStore', () => {
  it('forgets keys whose lease or window ended at the next claim, holding no timer while nobody waits', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const store = new MemoryIdempotencyStore();
    for (let i = 0; i < 100; i++) {
      const claim = await store.claim(`k${i}`, 100);
      if (i % 2 === 0 && claim.kind === 'first') await store.complete(`k${i}`, claim.token, 'r', 150);
    }
    await store.claim('long', 60_000);
    expect(store.size).toBe(101);
    expect(timers()).toBe(before);

    await new Promise((resolve) => setTimeout(resolve, 300));
    await store.claim('next', 100);
    expect(store.size).toBe(2);
    expect(store.pendingWaits).toBe(0);
    await store.close();
  });

  it('remembers at most maxKeys ids: the oldest results go first, a running lease never', async () => {
    const store = new MemoryIdempotencyStore({ maxKeys: 3 });
    const running = await store.claim('running', 60_000);
    expect(running.kind).toBe('first');
    for (const key of ['a', 'b', 'c', 'd']) {
      const claim = await store.claim(key, 60_000);
      if (claim.kind === 'first') await store.complete(key, claim.token, `result ${key}`, 60_000);
    }
    expect(store.size).toBe(3);
    // a and b were forgotten early: a repeat runs again. c and d are still answered.
    expect((await store.claim('a', 60_000)).kind).toBe('first');
    expect(await store.claim('d', 60_000)).toEqual({ kind: 'done', result: 'result d' });
    expect(await store.claim('running', 60_000)).toEqual({ kind: 'running' });
    expect(() => new MemoryIdempotencyStore({ maxKeys: 0 })).toThrow(/maxKeys/);
    await store.close();
  });

  it('ends a pending wait with shutting_down at close, and refuses calls afterwards', async () => {
    const store = new MemoryIdempotencyStore();
    await store.claim('k', 60_000);
    const signal = new WatchedCancel();
    const wait = store.waitFor('k', signal);
    expect(store.pendingWaits).toBe(1);
    await store.close();

    await expect(wait).rejects.toMatchObject({ code: 'shutting_down' });
    expect(store.pendingWaits).toBe(0);
    expect(signal.listeners.size).toBe(0);
    await expect(store.claim('k', 1000)).rejects.toMatchObject({ code: 'shutting_down' });
  });
});
