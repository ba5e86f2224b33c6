import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterKeys } from '../../src/cluster/cluster-keys.js';
import { MemoryBusNetwork } from '../../src/cluster/memory-bus-transport.js';
import { RedisBusTransport } from '../../src/cluster/redis-bus-transport.js';
import type { RedisClient } from '../../src/redis/client.js';
import { redisTargets } from '../support/redis-targets.js';
import { waitFor } from '../support/wait.js';
import { type BusWire, describeBusTransport } from './bus-transport.contract.js';

/**
 * The BusTransport contract against the in-memory network, against Redis sharded pub/sub on a
 * private redis-server, and on a real three-master Redis Cluster (where each node's channel lives on
 * the master owning its slot, and the subscriber keeps a connection per master). Then what only the
 * Redis transport has: its channel names and its wording when Redis cannot take a message.
 */

const { redis, cluster } = redisTargets('bus-test');
let prefixes = 0;

function memoryWire(): BusWire {
  const network = new MemoryBusNetwork();
  return { transport: async () => network.transport(), close: async () => undefined };
}

/**
 * Redis transports on their own key prefix, each node with a publisher and a subscriber connection
 * of its own, as a pushgate node has; `open` makes a connected client.
 */
function redisWire(open: (role: 'publisher' | 'subscriber') => Promise<RedisClient>): BusWire {
  const keys = new ClusterKeys(`bus-test${++prefixes}:`);
  const clients: RedisClient[] = [];
  const opened = async (role: 'publisher' | 'subscriber'): Promise<RedisClient> => {
    const client = await open(role);
    clients.push(client);
    return client;
  };
  return {
    async transport() {
      return new RedisBusTransport({ publisher: await opened('publisher'), subscriber: await opened('subscriber'), keys });
    },
    async close() {
      for (const client of clients.splice(0)) client.disconnect();
    },
  };
}

async function standalone(): Promise<RedisClient> {
  const client = new Redis(redis().url, { lazyConnect: true });
  await client.connect();
  return client;
}

/** As src/redis/connection.ts opens them: a subscriber keeps a sharded subscriber per master. */
async function clusterClient(role: 'publisher' | 'subscriber'): Promise<RedisClient> {
  const client = cluster().client({ lazyConnect: true, shardedSubscribers: role === 'subscriber' });
  await client.connect();
  return client;
}

describeBusTransport('MemoryBusNetwork', async () => memoryWire());
describeBusTransport('RedisBusTransport (one redis-server)', async () => redisWire(standalone));
describeBusTransport('RedisBusTransport (Redis Cluster, three masters)', async () => redisWire(clusterClient));

describe('RedisBusTransport on Redis', () => {
  const clients: RedisClient[] = [];

  afterEach(() => {
    for (const client of clients.splice(0)) client.disconnect();
  });

  async function connected(): Promise<RedisClient> {
    const client = await standalone();
    clients.push(client);
    return client;
  }

  it('listens on the sharded channel <prefix>bus:<node id>', async () => {
    const keys = new ClusterKeys('bus-layout:');
    const transport = new RedisBusTransport({ publisher: await connected(), subscriber: await connected(), keys });
    const received: string[] = [];
    await transport.listen('node-a', (message) => received.push(message));
    const probe = await connected();

    expect(await probe.call('PUBSUB', 'SHARDCHANNELS', 'bus-layout:*')).toEqual(['bus-layout:bus:node-a']);
    expect(await probe.spublish('bus-layout:bus:node-a', 'hello')).toBe(1);
    await waitFor('the message published on the channel', () => received.length === 1);
    expect(received).toEqual(['hello']);
    transport.close();
  });

  it('rejects a send Redis cannot take with a message an operator can act on', async () => {
    // Never connected, and commands do not queue: as a node's command connection while Redis is away.
    const publisher = new Redis(redis().url, { lazyConnect: true, enableOfflineQueue: false });
    clients.push(publisher);
    const transport = new RedisBusTransport({ publisher, subscriber: await connected(), keys: new ClusterKeys('bus-away:') });

    await expect(transport.send('node-a', 'hello')).rejects.toThrow('not connected to Redis (REDIS_URL); reconnecting');
  });
});
