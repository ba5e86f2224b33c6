import type { Socket } from 'socket.io-client';
import { describe, expect, it } from 'vitest';
import { DeliveryStatus } from '../../src/gen/pushgate/v1/push_service.js';
import { RegistryKeys } from '../../src/registry/redis-keys.js';
import { clusterTestHooks, startCluster } from '../support/cluster.js';
import { metricCount, pushToUsers } from '../support/push-to-users.js';
import { waitFor } from '../support/wait.js';

// PushToUsers in cluster mode: three real nodes on a private redis-server, four registry shards.
// The batch's cost is counted on the node it is sent to, from its own metrics.

type Ack = (...reply: unknown[]) => void;

const SHARDS = 4;
const { cleanups, redis } = clusterTestHooks();

describe('PushToUsers across nodes', () => {
  it('does one registry lookup per shard and one bus request per other node for the whole batch, all ACKED', async () => {
    const cluster = await startCluster(redis().url, 3, { PUSHGATE_REDIS_SHARDS: String(SHARDS) });
    cleanups.push(() => cluster.stop());
    const [a, b, c] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];

    // 12 users, each with sessions on two nodes (user i on nodes i and i+1, mod 3), plus 3 users with none.
    const nodes = [a, b, c];
    const users = Array.from({ length: 12 }, (_, i) => `cu-${i}`);
    const sockets: Socket[] = [];
    const received = new Map<string, number>();
    for (const [i, userId] of users.entries()) {
      for (const owner of [nodes[i % 3]!, nodes[(i + 1) % 3]!]) {
        const socket = await owner.connect(userId, 'web');
        socket.on('notice', (_data: unknown, ack: Ack) => {
          received.set(socket.id!, (received.get(socket.id!) ?? 0) + 1);
          ack(userId);
        });
        sockets.push(socket);
      }
    }
    const absent = ['cu-none-1', 'cu-none-2', 'cu-none-3'];
    const everyone = [...users, ...absent];
    await waitFor('every session to be registered', async () => {
      const found = await a.app.registry.lookupMany(users);
      return [...found.values()].every((sessions) => sessions.length === 2);
    });
    const keys = new RegistryKeys(cluster.prefix, SHARDS);
    const shards = new Set(everyone.map((userId) => keys.shardOf(userId)));
    expect(shards.size).toBeGreaterThan(1);

    const registry = a.app.metrics.registry;
    const lookups = (): Promise<number> => metricCount(registry, 'pushgate_redis_command_duration_seconds', { operation: 'pgLookupMany' });
    const busPushes = (): Promise<number> => metricCount(registry, 'pushgate_bus_requests_total', { type: 'push' });
    const [lookupsBefore, busBefore] = [await lookups(), await busPushes()];

    const batch = pushToUsers(a.client.raw, { userIds: everyone, event: 'notice', data: 'cluster', ackTimeoutMs: 3000 });
    const { summary } = await batch.done;

    expect(summary).toMatchObject({ users: 15, usersWithoutSessions: 3, sessions: 24, acked: 24, timedOut: 0, failed: 0 });
    for (const { result } of batch.results) {
      const expected = users.includes(result.userId) ? 2 : 0;
      expect(result.deliveries).toHaveLength(expected);
      expect(result.deliveries.every((d) => d.status === DeliveryStatus.DELIVERY_STATUS_ACKED && d.ackData === result.userId)).toBe(true);
      expect(new Set(result.deliveries.map((d) => d.session!.nodeId)).size).toBe(expected === 0 ? 0 : 2);
    }
    expect([...received.values()]).toEqual(Array(24).fill(1));
    expect((await lookups()) - lookupsBefore).toBe(shards.size);
    // Nodes b and c each got one request for all their sessions of the batch; node a's went local.
    expect((await busPushes()) - busBefore).toBe(2);
    await waitFor('nothing left in flight', () =>
      nodes.every((n) => n.app.cluster!.bus.inFlight === 0 && n.app.local.pendingWaits() === 0 && n.app.callsInFlight === 0),
    );
    for (const socket of sockets) socket.close();
  });
});
