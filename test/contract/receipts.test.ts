import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReceiptStore } from '../../src/domain/receipts.js';
import { isPushgateError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { MemoryReceiptStore } from '../../src/receipts/memory-receipts.js';
import { messageKey } from '../../src/receipts/receipt-keys.js';
import { RedisReceiptStore } from '../../src/receipts/redis-receipts.js';
import type { RedisClient } from '../../src/redis/client.js';
import { openRedis } from '../../src/redis/connection.js';
import type { TestRedis, TestRedisCluster } from '../support/redis-server.js';
import { redisTargets } from '../support/redis-targets.js';
import { waitFor } from '../support/wait.js';
import { describeReceiptStore, type EventRetention, event, type ReceiptDeployment, receiptOf, session } from './receipts.contract.js';

/**
 * The ReceiptStore contract on memory, on a private redis-server and on a three-master Redis
 * Cluster (which refuses any script whose keys span slots), with connections opened as the app
 * opens them. Then what only one of them has: the Redis key layout, a Redis that lost its data,
 * `registry_unavailable` when Redis is away; the memory store's bound on receipts and its
 * listener error report.
 */

const LOG = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');

const { redis, cluster, commandTimeoutMs: COMMAND_TIMEOUT_MS, config, connect, ownServer } = redisTargets('receipts-test');
let prefixes = 0;

/** Nodes of one deployment on Redis: a command connection, a reader and a store each, on one fresh prefix. */
function redisDeployment(
  server: TestRedis | TestRedisCluster,
  retention: EventRetention,
  prefix = `rc${++prefixes}:`,
): ReceiptDeployment & {
  clients: RedisClient[];
} {
  const settings = config(server);
  const clients: RedisClient[] = [];
  const readers: RedisClient[] = [];
  const ended = new Set<RedisClient>();
  return {
    nodes: true,
    clients,
    async store() {
      const client = await connect(settings);
      clients.push(client);
      // Tests stop Redis under it: calls report that; the event itself is noise here.
      client.on('error', () => undefined);
      const store = new RedisReceiptStore({
        client,
        openReader: () => {
          const reader = openRedis(settings, 'reader', `receipts-test-${readers.length}`);
          readers.push(reader);
          // A Cluster client reports 'close' again after its 'end': the event says it is over.
          reader.once('end', () => ended.add(reader));
          reader.connect().catch(() => undefined);
          return reader;
        },
        prefix,
        ...retention,
        log: LOG,
      });
      await store.start();
      return store;
    },
    leftovers: () => readers.filter((reader) => !ended.has(reader)).map((reader) => `a reader connection (${reader.status})`),
    async close() {
      for (const client of clients) client.disconnect();
      for (const reader of readers) reader.disconnect();
    },
  };
}

describeReceiptStore('MemoryReceiptStore', async (retention) => {
  const store = new MemoryReceiptStore(retention);
  return { nodes: false, store: async () => store, leftovers: () => [], close: async () => undefined };
});
describeReceiptStore('RedisReceiptStore (one redis-server)', async (retention) => redisDeployment(redis(), retention));
describeReceiptStore('RedisReceiptStore (Redis Cluster, three masters)', async (retention) => redisDeployment(cluster(), retention));

describe('RedisReceiptStore on Redis', () => {
  const KEEP: EventRetention = { retention: 1000, retentionMs: 60_000 };
  const stores: ReceiptStore[] = [];
  const deployments: ReturnType<typeof redisDeployment>[] = [];

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    for (const deployment of deployments.splice(0)) await deployment.close();
  });

  async function storeOn(server: TestRedis, prefix?: string): Promise<ReceiptStore> {
    const deployment = redisDeployment(server, KEEP, prefix);
    deployments.push(deployment);
    const store = await deployment.store();
    stores.push(store);
    return store;
  }

  it('keeps a receipt in one hash tagged with its own message id, expiring with its retention', async () => {
    const store = await storeOn(redis(), 'layout:');
    const probe = redis().client();
    const id = 'a}b{c%\0d';
    await store.put(receiptOf(id, { sessions: [session('s1'), session('s2')] }), 5000);
    await store.update(id, { stored: true }, event('stored', id));

    const key = `layout:rc:{a%7Db%7Bc%25\0d}`;
    expect(messageKey(id)).toBe('a%7Db%7Bc%25\0d');
    expect((await probe.keys('layout:*')).sort()).toEqual([key, 'layout:{receipt-events}', 'layout:{receipt-events}epoch']);
    expect(await probe.pttl(key)).toBeGreaterThan(4000);
    expect(await probe.pttl(key)).toBeLessThanOrEqual(5000);
    const hash = await probe.hgetall(key);
    expect(Object.keys(hash).sort()).toEqual(['f', 'ns', 's:s1', 's:s2', 'stored', 'x']);
    expect(hash.stored).toBe('1');
    const entries = (await probe.xrange('layout:{receipt-events}', '-', '+')) as [string, string[]][];
    expect(entries).toHaveLength(1);
    const fields = entries[0]![1];
    expect(fields).toEqual([
      'kind',
      'stored',
      'messageId',
      id,
      'userId',
      'u1',
      'sessionId',
      '',
      'clientType',
      '',
      'atMs',
      String(event('stored', id).atMs),
      'replay',
      '0',
      'n',
      '1',
    ]);
  });

  it('refuses cursors from before Redis lost its data, and its listeners hear the new stream', async () => {
    const server = await ownServer();
    const store = await storeOn(server);
    const heard: string[] = [];
    store.subscribe((e) => heard.push(e.messageId));
    await store.update('m1', {}, event('stored', 'm1'));
    const cursor = await store.position();
    await waitFor('the first event', () => heard.length === 1);

    await server.restart();
    await waitFor('the store to reach Redis again', async () => (await store.position().catch(() => undefined)) !== undefined);
    const err = await store.readAfter(cursor, 10).catch((e: unknown) => e);
    expect(isPushgateError(err) && err.code).toBe('cursor_expired');
    await store.update('m2', {}, event('stored', 'm2'));
    await waitFor('the event after the restart', () => heard.length === 2, { timeoutMs: 8000 });
    expect(heard).toEqual(['m1', 'm2']);
  });

  it('rejects every call with registry_unavailable at once when Redis is stopped', async () => {
    const server = await ownServer();
    const store = await storeOn(server);
    const cursor = await store.position();
    await server.stop();
    const [client] = deployments[0]!.clients;
    await waitFor('the client to see Redis gone', () => client!.status !== 'ready');

    const started = performance.now();
    const errors = await Promise.all(
      [
        store.put(receiptOf('m1'), 1000),
        store.update('m1', { stored: true }, event('stored', 'm1')),
        store.update('m1', {}, event('stored', 'm1')),
        store.get('m1'),
        store.position(),
        store.readAfter(cursor, 10),
      ].map((call) =>
        call.then(
          () => undefined,
          (err: unknown) => err,
        ),
      ),
    );
    for (const error of errors) {
      expect(isPushgateError(error) && error.code).toBe('registry_unavailable');
      expect((error as Error).message).toMatch(/^receipt store unavailable/);
    }
    expect(performance.now() - started).toBeLessThan(COMMAND_TIMEOUT_MS + 1000);
  });

  it('rejects with registry_unavailable within the command timeout when Redis does not answer', async () => {
    const server = await ownServer();
    const store = await storeOn(server);
    await server.pause(10 * COMMAND_TIMEOUT_MS);

    const started = performance.now();
    const error = await store.get('m1').catch((err: unknown) => err);
    expect(isPushgateError(error) && error.code).toBe('registry_unavailable');
    expect(performance.now() - started).toBeLessThan(COMMAND_TIMEOUT_MS + 1000);
  });
});

describe('MemoryReceiptStore', () => {
  it('keeps at most maxReceipts, dropping those due to leave first', async () => {
    const store = new MemoryReceiptStore({ maxReceipts: 3 });
    await store.put(receiptOf('late'), 50_000);
    await store.put(receiptOf('soon'), 10_000);
    await store.put(receiptOf('mid'), 30_000);
    await store.put(receiptOf('new'), 40_000);
    expect(store.size).toBe(3);
    expect(await store.get('soon')).toBeUndefined();
    await store.put(receiptOf('newer'), 60_000);
    expect(await store.get('mid')).toBeUndefined();
    for (const id of ['late', 'new', 'newer']) expect(await store.get(id)).toBeDefined();
  });

  it('reports what a listener throws, tells the listeners in append order, and forgets them at close', async () => {
    const errors: unknown[] = [];
    const store = new MemoryReceiptStore({ onListenerError: (err) => errors.push(err) });
    const heard: string[] = [];
    store.subscribe(() => {
      throw new Error('listener fault');
    });
    store.subscribe((e) => heard.push(e.messageId));
    const appending = [store.update('m1', {}, event('stored', 'm1')), store.update('m2', {}, event('stored', 'm2'))];
    // Told synchronously, inside the call.
    expect(heard).toEqual(['m1', 'm2']);
    await Promise.all(appending);
    expect(errors).toEqual([new Error('listener fault'), new Error('listener fault')]);

    await store.close();
    await store.update('m3', {}, event('stored', 'm3'));
    expect(heard).toEqual(['m1', 'm2']);
  });
});
