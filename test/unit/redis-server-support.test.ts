import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_SERVER_MISSING, startRedis, startRedisCluster, type TestRedis, type TestRedisCluster } from '../support/redis-server.js';

/** Resolves true when something accepts a TCP connection on the port, false when it is refused. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('startRedis', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('runs a private server on its own port that answers SET/GET', async () => {
    expect(redis.port).not.toBe(6379);
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    const client = redis.client();
    await client.set('greeting', 'hello');
    expect(await client.get('greeting')).toBe('hello');
    expect(await client.config('GET', 'save')).toEqual(['save', '']);
  });

  it('restart() empties the data and the same URL works again', async () => {
    const client = new Redis(redis.url, { retryStrategy: (times) => Math.min(times * 20, 100) });
    try {
      await client.set('survivor', 'no');
      await redis.restart();
      // The old connection is dead; ioredis reconnects by itself and the command goes through.
      expect(await client.get('survivor')).toBeNull();
      await client.set('after', 'yes');
      expect(await redis.client().get('after')).toBe('yes');
    } finally {
      client.disconnect();
    }
  });

  it('pause(800) makes every client wait', async () => {
    const client = redis.client();
    await client.ping();
    await redis.pause(800);
    const started = performance.now();
    await client.get('anything');
    expect(performance.now() - started).toBeGreaterThanOrEqual(700);
  });
});

describe('stop', () => {
  it('makes the port refuse connections and is idempotent', async () => {
    const redis = await startRedis();
    expect(await accepts(redis.port)).toBe(true);
    await redis.stop();
    expect(await accepts(redis.port)).toBe(false);
    await redis.stop();
  });
});

describe('startRedisCluster', () => {
  let cluster: TestRedisCluster;
  beforeAll(async () => {
    cluster = await startRedisCluster(3);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('accepts writes across slots and keeps one hash tag in one slot', async () => {
    expect(cluster.urls).toHaveLength(3);
    const client = cluster.client();
    const tags = Array.from({ length: 60 }, (_, i) => `u:user${i}`);
    await Promise.all(tags.map((tag) => client.set(`{${tag}}:a`, tag)));
    expect(await Promise.all(tags.map((tag) => client.get(`{${tag}}:a`)))).toEqual(tags);

    const slotA = await client.call('CLUSTER', 'KEYSLOT', '{u:alice}:a');
    const slotB = await client.call('CLUSTER', 'KEYSLOT', '{u:alice}:b');
    expect(slotA).toBe(slotB);

    // Different tags land on different masters: every master holds some of the keys.
    const masters = client.nodes('master');
    expect(masters).toHaveLength(3);
    const sizes = await Promise.all(masters.map((node) => node.dbsize()));
    for (const size of sizes) expect(size).toBeGreaterThan(0);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(tags.length);
  });
});

describe('missing redis-server', () => {
  it('fails with the message that says how to install it', async () => {
    const emptyDir = mkdtempSync(join(tmpdir(), 'pushgate-empty-path-'));
    try {
      await expect(startRedis({ searchPath: emptyDir })).rejects.toThrow(REDIS_SERVER_MISSING);
      await expect(startRedisCluster(3, { searchPath: emptyDir })).rejects.toThrow(REDIS_SERVER_MISSING);
      expect(REDIS_SERVER_MISSING).toContain('redis-server not found on PATH');
      expect(REDIS_SERVER_MISSING).toContain('apt-get install -y redis-server');
    } finally {
      rmSync(emptyDir, { recursive: true, force: true });
    }
  });
});
