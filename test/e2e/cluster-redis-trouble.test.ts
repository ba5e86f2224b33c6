import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { type ChannelCredentials, credentials, status as GrpcStatus, loadPackageDefinition, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { Socket } from 'socket.io-client';
import { describe, expect, it } from 'vitest';
import { DeliveryStatus } from '../../src/gen/pushgate/v1/push_service.js';
import { clusterTestHooks, FAST_CLUSTER_ENV, startCluster, startTcpProxy, type TcpProxy, uniquePrefix } from '../support/cluster.js';
import { grpcError } from '../support/grpc-client.js';
import { startNode, type TestNode } from '../support/node.js';
import {
  CONNECTED,
  DISCONNECTED,
  eventsOf,
  OFFLINE,
  ONLINE,
  presenceStreams,
  type Summary,
  summary,
  type Watch,
} from '../support/presence-watch.js';
import { startRedis } from '../support/redis-server.js';
import { connectError } from '../support/socket-client.js';
import { signToken } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

// Cluster mode when Redis misbehaves: paused (commands hang), unreachable (connections refused),
// restarted empty (all data lost), or reached over a path that stalls. Nodes run in this process
// against a private redis-server; to make Redis unreachable, or the path to it stall, without
// losing its data, they reach it through a TCP relay the test controls.

const { DELIVERY_STATUS_ACKED: ACKED } = DeliveryStatus;

type Ack = (...reply: unknown[]) => void;

const { cleanups, redis } = clusterTestHooks();

async function cluster(count: number, url = redis().url, env: Record<string, string> = {}): Promise<TestNode[]> {
  const started = await startCluster(url, count, env);
  cleanups.push(() => started.stop());
  return started.nodes;
}

async function proxy(): Promise<TcpProxy> {
  const relay = await startTcpProxy(redis().port);
  cleanups.push(() => relay.close());
  return relay;
}

/** A client that acks every `notice` with its own client type; listed by every node before it resolves. */
async function connect(node: TestNode, userId: string, clientType: string, seenBy: readonly TestNode[]): Promise<Socket> {
  const socket = await node.connect(userId, clientType);
  socket.on('notice', (_data: unknown, ack: Ack) => ack(clientType));
  const id = socket.id!;
  for (const other of seenBy) {
    await waitFor(`session ${id} to be listed by ${other.app.config.server.nodeId}`, async () =>
      (await other.client.listSessions({ userId })).sessions.some((s) => s.sessionId === id),
    );
  }
  return socket;
}

/** Every `disconnect` a client sees (it never reconnects on its own: reconnection is off). */
function disconnects(sockets: readonly Socket[]): string[] {
  const reasons: string[] = [];
  for (const socket of sockets) socket.on('disconnect', (reason: string) => reasons.push(`${socket.id ?? '?'}: ${reason}`));
  return reasons;
}

/** Resolves once every client has received `count` more pings from its server: time passed, and the connections lived through it. */
async function pingsArrive(sockets: readonly Socket[], count: number): Promise<void> {
  const pings = sockets.map(() => 0);
  for (const [i, socket] of sockets.entries()) {
    socket.io.engine.on('ping', () => {
      pings[i]!++;
    });
  }
  await waitFor(`${count} pings at every client`, () => pings.every((n) => n >= count), { timeoutMs: 10_000 });
}

/** Checks `check` again and again for `ms`: it must pass every time. */
async function holds(what: string, ms: number, check: () => Promise<void>): Promise<void> {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    try {
      await check();
    } catch (err) {
      throw new Error(`${what} stopped holding: ${(err as Error).message}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Pushes `notice` from `node` and returns [session id, status] per delivery, or the error code. */
async function pushOutcome(node: TestNode, userId: string, deadlineMs = 2000): Promise<[string, DeliveryStatus][] | string> {
  try {
    const response = await node.client.pushToUser(
      { userId, event: 'notice', data: 1, ackTimeoutMs: 1000 },
      { deadline: Date.now() + deadlineMs },
    );
    return response.deliveries.map((d) => [d.session!.sessionId, d.status]);
  } catch (err) {
    return GrpcStatus[(err as ServiceError).code];
  }
}

async function listedIds(node: TestNode, userId: string): Promise<string[] | undefined> {
  try {
    return (await node.client.listSessions({ userId }, { deadline: Date.now() + 2000 })).sessions.map((s) => s.sessionId);
  } catch {
    return undefined;
  }
}

// --- gRPC health, as a load balancer or grpcurl checks it ---

interface HealthClient {
  check(
    request: { service: string },
    options: { deadline: number },
    callback: (err: ServiceError | null, response: { status: string }) => void,
  ): void;
  close(): void;
}

function healthClient(node: TestNode): HealthClient {
  const pkg = loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String })) as unknown as {
    grpc: { health: { v1: { Health: new (address: string, creds: ChannelCredentials) => HealthClient } } };
  };
  const client = new pkg.grpc.health.v1.Health(node.grpcAddress, credentials.createInsecure());
  cleanups.push(() => client.close());
  return client;
}

function health(client: HealthClient): Promise<string> {
  return new Promise((resolve, reject) =>
    client.check({ service: '' }, { deadline: Date.now() + 2000 }, (err, response) => (err ? reject(err) : resolve(response.status))),
  );
}

/** `/readyz` (ready) or `/healthz` (alive) of a node. */
async function probe(node: TestNode, path: '/readyz' | '/healthz'): Promise<{ code: number; body: Record<string, unknown> }> {
  const res = await fetch(`${node.httpUrl}${path}`);
  return { code: res.status, body: (await res.json()) as Record<string, unknown> };
}

// --- WatchPresence ---

const { watch, watchLive } = presenceStreams(cleanups);

/**
 * Connects a marker session on `node` and waits for its two events on `stream`: whatever the
 * stream was going to receive before them has arrived. Returns the events from index `from` on.
 */
async function settle(node: TestNode, stream: Watch, from: number): Promise<Summary[]> {
  const userId = `marker-${Math.random().toString(36).slice(2, 8)}`;
  const marker = await node.connect(userId, 'web');
  const id = marker.id!;
  await waitFor(
    `the marker ${userId} to reach the stream`,
    () => stream.events.some((e) => e.kind === CONNECTED && e.session?.sessionId === id),
    {
      timeoutMs: 5000,
    },
  );
  const events = summary(stream.events.slice(from));
  expect(events.slice(-2)).toEqual([
    [ONLINE, userId, id, '', 1],
    [CONNECTED, userId, id, '', 1],
  ]);
  return events.slice(0, -2);
}

const QUICK_FAILURES = [GrpcStatus.UNAVAILABLE, GrpcStatus.DEADLINE_EXCEEDED];

describe('Redis paused', () => {
  it('fails calls within about their deadline while Redis hangs, keeps running, and serves again once it answers', async () => {
    // Leases outlast the pause: this is about calls, not about reaping (the next test is).
    const nodes = await cluster(2, redis().url, { PUSHGATE_NODE_LEASE_MS: '5000' });
    const [a, b] = nodes as [TestNode, TestNode];
    const clients = [await connect(a, 'u-1', 'app', nodes), await connect(b, 'u-1', 'web', nodes)];
    const closed = disconnects(clients);
    expect(await pushOutcome(a, 'u-1')).toEqual([
      [clients[0]!.id, ACKED],
      [clients[1]!.id, ACKED],
    ]);

    await redis().pause(3000);
    const pausedAt = performance.now();
    const timed = async (call: Promise<unknown>): Promise<{ err: ServiceError; ms: number }> => {
      const started = performance.now();
      const err = await grpcError(call);
      return { err, ms: performance.now() - started };
    };
    const deadline = (): { deadline: number } => ({ deadline: Date.now() + 1000 });
    const outcomes = await Promise.all([
      timed(a.client.pushToUser({ userId: 'u-1', event: 'notice', data: 1 }, deadline())),
      timed(b.client.pushToUser({ userId: 'u-1', event: 'notice', data: 1 }, deadline())),
      timed(a.client.listSessions({ userId: 'u-1' }, deadline())),
      timed(b.client.disconnectSessions({ userId: 'u-1' }, deadline())),
    ]);
    for (const { err, ms } of outcomes) {
      expect(QUICK_FAILURES).toContain(err.code);
      expect(ms).toBeLessThan(1500);
      if (err.code === GrpcStatus.UNAVAILABLE) expect(err.details).toMatch(/registry unavailable/i);
    }
    // Still paused: every answer above came from the nodes giving up, not from Redis.
    expect(performance.now() - pausedAt).toBeLessThan(3000);
    // The node itself is fine: it answers what needs no Redis at once.
    const invalid = await timed(a.client.pushToUser({ userId: '', event: 'notice' }));
    expect(invalid.err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(invalid.ms).toBeLessThan(200);
    expect((await probe(a, '/readyz')).code).toBeOneOf([200, 503]);
    // Alive whatever Redis does: a liveness probe must not restart the node over a Redis outage.
    expect((await probe(a, '/healthz')).code).toBe(200);

    // Once the pause is over, pushes work again, from both nodes, to both sessions.
    for (const node of nodes) {
      await waitFor(
        `pushes from ${node.app.config.server.nodeId} to be acked again`,
        async () =>
          JSON.stringify(await pushOutcome(node, 'u-1')) ===
          JSON.stringify([
            [clients[0]!.id, ACKED],
            [clients[1]!.id, ACKED],
          ]),
        { timeoutMs: 8000, intervalMs: 100 },
      );
    }
    await waitFor('both nodes healthy', () => nodes.every((n) => n.app.status === 'ok'), { timeoutMs: 5000 });
    expect(closed).toEqual([]);
    expect(clients.every((c) => c.connected)).toBe(true);
  });

  it('after a pause longer than the node lease, every node serves its sessions again', async () => {
    // Every lease lapses during the pause, so when Redis answers again the nodes may reap each
    // other before they renew: each must then put its own sessions back.
    const nodes = await cluster(2);
    const [a, b] = nodes as [TestNode, TestNode];
    const clients = [await connect(a, 'u-1', 'app', nodes), await connect(b, 'u-1', 'web', nodes)];
    const ids = clients.map((c) => c.id!);
    const closed = disconnects(clients);

    await redis().pause(3000);
    await waitFor('both nodes to notice', () => nodes.every((n) => n.app.status === 'registry_unavailable'), { timeoutMs: 3000 });
    for (const node of nodes) {
      await waitFor(
        `pushes from ${node.app.config.server.nodeId} to be acked by both sessions again`,
        async () =>
          JSON.stringify(await pushOutcome(node, 'u-1')) ===
          JSON.stringify([
            [ids[0], ACKED],
            [ids[1], ACKED],
          ]),
        { timeoutMs: 10_000, intervalMs: 100 },
      );
    }
    // And it stays so through a lease and several reap rounds.
    await holds('both sessions listed by both nodes', 2000, async () => {
      for (const node of nodes) expect(await listedIds(node, 'u-1')).toEqual(ids);
    });
    expect(nodes.map((n) => n.app.status)).toEqual(['ok', 'ok']);
    expect(closed).toEqual([]);
  });
});

describe('Redis unreachable', () => {
  it('answers UNAVAILABLE at once, reports NOT_SERVING and 503, and keeps every socket connected', async () => {
    const relay = await proxy();
    const nodes = await cluster(2, relay.url, { PUSHGATE_PING_INTERVAL_MS: '200', PUSHGATE_PING_TIMEOUT_MS: '1000' });
    const [a, b] = nodes as [TestNode, TestNode];
    const clients = [await connect(a, 'u-1', 'app', nodes), await connect(b, 'u-1', 'web', nodes), await connect(b, 'u-2', 'pc', nodes)];
    const ids = clients.map((c) => c.id!);
    const closed = disconnects(clients);
    const probes = nodes.map(healthClient);
    for (const probe of probes) expect(await health(probe)).toBe('SERVING');

    await relay.cut();

    for (const [i, node] of nodes.entries()) {
      await waitFor(`${node.app.config.server.nodeId} to report NOT_SERVING`, async () => (await health(probes[i]!)) === 'NOT_SERVING', {
        timeoutMs: 3000,
      });
      const { nodeId } = node.app.config.server;
      expect(await probe(node, '/readyz')).toEqual({ code: 503, body: { status: 'not_ready', reasons: ['registry_unavailable'], nodeId } });
      expect(await probe(node, '/healthz')).toEqual({ code: 200, body: { status: 'alive', nodeId } });
    }
    const calls: [string, () => Promise<unknown>][] = [
      ['PushToUser', () => a.client.pushToUser({ userId: 'u-1', event: 'notice', data: 1, ackTimeoutMs: 5000 })],
      ['PushToUser (no_ack)', () => b.client.pushToUser({ userId: 'u-1', event: 'notice', data: 1, noAck: true })],
      ['ListSessions', () => b.client.listSessions({ userId: 'u-1' })],
      ['DisconnectSessions', () => a.client.disconnectSessions({ userId: 'u-2' })],
    ];
    for (const [name, call] of calls) {
      const started = performance.now();
      const err = await grpcError(call());
      const ms = performance.now() - started;
      expect({ name, code: GrpcStatus[err.code] }).toEqual({ name, code: 'UNAVAILABLE' });
      expect(ms, name).toBeLessThan(300);
      expect(err.details, name).toMatch(/registry unavailable.*Redis/i);
      expect(err.metadata.get('pushgate-error-code'), name).toEqual(['registry_unavailable']);
    }

    // New clients are turned away with a code they can act on (retry, or another node).
    const refused = await connectError(a.httpUrl, { token: await signToken('u-3'), clientType: 'web' });
    expect(refused.code).toBe('registry_unavailable');

    // Longer than a lease (1.5 s) with Redis away: sockets keep answering pings and stay.
    await pingsArrive(clients, 8);
    expect(closed).toEqual([]);
    expect(clients.every((c) => c.connected)).toBe(true);
    expect(nodes.map((n) => n.app.local.size)).toEqual([1, 2]);

    // Back: same sessions, no client reconnected, serving again.
    await relay.restore();
    for (const [i, node] of nodes.entries()) {
      await waitFor(`${node.app.config.server.nodeId} to report SERVING again`, async () => (await health(probes[i]!)) === 'SERVING', {
        timeoutMs: 5000,
      });
      expect((await probe(node, '/readyz')).code).toBe(200);
    }
    expect(await listedIds(a, 'u-1')).toEqual([ids[0], ids[1]]);
    expect(await listedIds(a, 'u-2')).toEqual([ids[2]]);
    expect(await pushOutcome(b, 'u-1')).toEqual([
      [ids[0], ACKED],
      [ids[1], ACKED],
    ]);
    expect(closed).toEqual([]);
  });

  it('does not keep a stopping node waiting for Redis', async () => {
    const relay = await proxy();
    const [a] = (await cluster(1, relay.url)) as [TestNode];
    // Should the stop hang, the relay comes back before the cluster's own cleanup, which then finishes.
    cleanups.push(() => relay.restore());
    const client = await connect(a, 'u-1', 'web', [a]);
    const notices: unknown[] = [];
    client.on('pushgate:disconnect', (notice: unknown) => notices.push(notice));
    await relay.cut();
    await waitFor('the node to notice', () => a.app.status === 'registry_unavailable');

    const started = performance.now();
    let stoppedAfter: number | undefined;
    void a.app.stop().then(() => (stoppedAfter = performance.now() - started));
    // Shutdown grace is 2 s (test/support/node.ts); nothing is in flight, so it should take far less.
    await waitFor('the node to stop while Redis is unreachable', () => stoppedAfter !== undefined, { timeoutMs: 4000 });
    expect(stoppedAfter).toBeLessThan(4000);
    expect(notices).toEqual([{ reason: 'server_shutdown' }]);
  });
});

describe('a live node whose path to Redis stalls', () => {
  it('gets its sessions back after the others reaped them', async () => {
    // Node b reaches Redis through a relay that stalls for longer than a lease: b's lease lapses
    // and node a reaps b's sessions (node_lost), as it should. But b is alive and keeps its
    // sockets; once the path flows again, b must put its sessions back. The renewals b sent while
    // stalled reach Redis late: the first one renews the lapsed lease and reports it lost, but b
    // has stopped waiting for that reply (command timeout).
    const relay = await proxy();
    const [a] = (await cluster(1)) as [TestNode];
    const prefix = a.app.config.redis!.keyPrefix;
    const b = await startNode({ ...FAST_CLUSTER_ENV, REDIS_URL: relay.url, PUSHGATE_REDIS_PREFIX: prefix, PUSHGATE_NODE_ID: 'node-b' });
    cleanups.push(() => b.stop());
    // Should the test fail while stalled, the path flows again before node b stops.
    cleanups.push(() => relay.flow());
    const nodes = [a, b];
    const stream = await watchLive(a);
    const onA = await connect(a, 'u-1', 'app', nodes);
    const onB = await connect(b, 'u-1', 'web', nodes);
    const ids = [onA.id!, onB.id!];
    const closed = disconnects([onA, onB]);
    await eventsOf(stream, 3);

    relay.stall();
    await waitFor('node a to reap node b', async () => JSON.stringify(await listedIds(a, 'u-1')) === JSON.stringify([ids[0]]), {
      timeoutMs: 5000,
      intervalMs: 100,
    });
    expect((await eventsOf(stream, 4)).slice(3)).toEqual([[DISCONNECTED, 'u-1', ids[1], 'node_lost', 1]]);
    relay.flow();

    // Node b renews every 500 ms: a few renewals later its session must be back.
    await waitFor('node b’s session to be listed again', async () => JSON.stringify(await listedIds(a, 'u-1')) === JSON.stringify(ids), {
      timeoutMs: 5000,
      intervalMs: 100,
    });
    expect(await pushOutcome(a, 'u-1')).toEqual([
      [ids[0], ACKED],
      [ids[1], ACKED],
    ]);
    // Watchers were told it left, so they are told it is back.
    expect((await eventsOf(stream, 5)).slice(3)).toEqual([
      [DISCONNECTED, 'u-1', ids[1], 'node_lost', 1],
      [CONNECTED, 'u-1', ids[1], '', 2],
    ]);
    expect(closed).toEqual([]);
  });
});

describe('Redis restarted empty', () => {
  it('gets every live session back without reconnecting anyone and without presence churn; old cursors are refused', async () => {
    const nodes = await cluster(2);
    const [a, b] = nodes as [TestNode, TestNode];
    const stream = await watchLive(a);
    const clients = [await connect(a, 'u-1', 'app', nodes), await connect(b, 'u-1', 'web', nodes), await connect(b, 'u-2', 'pc', nodes)];
    const ids = clients.map((c) => c.id!);
    const closed = disconnects(clients);
    expect(await eventsOf(stream, 5)).toEqual([
      [ONLINE, 'u-1', ids[0], '', 1],
      [CONNECTED, 'u-1', ids[0], '', 1],
      [CONNECTED, 'u-1', ids[1], '', 2],
      [ONLINE, 'u-2', ids[2], '', 1],
      [CONNECTED, 'u-2', ids[2], '', 1],
    ]);
    const oldCursor = stream.events.at(-1)!.cursor;
    const probes = nodes.map(healthClient);

    await redis().restart();
    const restartedAt = performance.now();

    await waitFor(
      'every session to be listed again by both nodes',
      async () => {
        for (const node of nodes) {
          if (JSON.stringify(await listedIds(node, 'u-1')) !== JSON.stringify([ids[0], ids[1]])) return false;
          if (JSON.stringify(await listedIds(node, 'u-2')) !== JSON.stringify([ids[2]])) return false;
        }
        return true;
      },
      { timeoutMs: 5000, intervalMs: 50 },
    );
    // README: each node notices within a second (reconnect) and re-registers its sessions.
    expect(performance.now() - restartedAt).toBeLessThan(2000);
    for (const node of nodes) {
      expect(await pushOutcome(node, 'u-1')).toEqual([
        [ids[0], ACKED],
        [ids[1], ACKED],
      ]);
      expect(await pushOutcome(node, 'u-2')).toEqual([[ids[2], ACKED]]);
    }
    for (const probe of probes) await waitFor('SERVING again', async () => (await health(probe)) === 'SERVING', { timeoutMs: 5000 });

    // The watcher saw nothing of it: no departures, no second arrival, and it is still live.
    expect(await settle(b, stream, 5)).toEqual([]);
    expect(stream.status).toBeUndefined();
    expect(closed).toEqual([]);
    expect(clients.map((c) => c.id)).toEqual(ids);

    // A cursor from before the restart points into a feed that no longer exists.
    const stale = watch(a.client, { resumeAfter: oldCursor });
    await waitFor('the stale resume to end', () => stale.status);
    expect(stale.status!.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(stale.status!.metadata.get('pushgate-error-code')).toEqual(['cursor_expired']);
    expect(stale.events).toEqual([]);
  });
});

describe('a session closing while Redis is away', () => {
  it.each(['unreachable', 'paused'] as const)('is announced once Redis is back (%s), and is gone from ListSessions', async (mode) => {
    const relay = mode === 'unreachable' ? await proxy() : undefined;
    // A lease longer than the outage: only the departures are under test, not reaping.
    const nodes = await cluster(2, relay?.url ?? redis().url, { PUSHGATE_NODE_LEASE_MS: '4000' });
    const [a, b] = nodes as [TestNode, TestNode];
    const stream = await watchLive(a);
    const keeps = await connect(a, 'u-1', 'app', nodes);
    const leavesU1 = await connect(b, 'u-1', 'web', nodes);
    const leavesU2 = await connect(b, 'u-2', 'pc', nodes);
    const [keepsId, leavesU1Id, leavesU2Id] = [keeps.id!, leavesU1.id!, leavesU2.id!];
    await eventsOf(stream, 5);

    if (relay !== undefined) await relay.cut();
    else await redis().pause(1500);
    const away = performance.now();
    leavesU1.close();
    leavesU2.close();
    // Node b noticed both closes; Redis has not heard of them.
    await waitFor('node b to drop both sockets', () => b.app.local.size === 0);
    await waitFor('node b to hold the departures for later', () => b.app.cluster!.registry.recovery.needsSync);
    if (relay !== undefined) {
      expect(performance.now() - away).toBeLessThan(1000);
      await relay.restore();
    }

    await waitFor('node b to have told Redis', () => !b.app.cluster!.registry.recovery.needsSync, { timeoutMs: 6000 });
    await waitFor('both nodes to serve again', () => nodes.every((n) => n.app.status === 'ok'), { timeoutMs: 6000 });
    expect(await listedIds(a, 'u-1')).toEqual([keepsId]);
    expect(await listedIds(b, 'u-2')).toEqual([]);
    expect(await settle(a, stream, 5)).toEqual([
      [DISCONNECTED, 'u-1', leavesU1Id, 'client_disconnect', 1],
      [DISCONNECTED, 'u-2', leavesU2Id, 'client_disconnect', 0],
      [OFFLINE, 'u-2', leavesU2Id, 'client_disconnect', 0],
    ]);
    expect(keeps.connected).toBe(true);
  });
});

describe('start-up', () => {
  it('fails in bounded time with an error naming REDIS_URL when nobody listens there', async () => {
    const port = await closedPort();
    const started = performance.now();
    const failure = await startNode({
      ...FAST_CLUSTER_ENV,
      REDIS_URL: `redis://127.0.0.1:${port}`,
      PUSHGATE_REDIS_PREFIX: uniquePrefix(),
    }).then(
      (node) => {
        cleanups.push(() => node.stop());
        return undefined;
      },
      (err: unknown) => err as Error,
    );
    const ms = performance.now() - started;
    expect(failure).toBeInstanceOf(Error);
    expect(failure!.name).toBe('StartError');
    expect(failure!.message).toContain('REDIS_URL');
    expect(failure!.message).toContain(`127.0.0.1:${port}`);
    expect(ms).toBeLessThan(5000);
  });
});

describe('start-up with the wrong Redis credentials', () => {
  it('says the credentials in REDIS_URL were refused (WRONGPASS, NOAUTH), not "Connection is closed", and never prints the password', async () => {
    const locked = await startRedis();
    cleanups.push(() => locked.stop());
    await locked.client().config('SET', 'requirepass', 'right-password');
    const withPassword = (password: string): string => locked.url.replace('redis://', `redis://:${password}@`);

    for (const [url, code] of [
      [withPassword('not-the-password'), 'WRONGPASS'],
      [locked.url, 'NOAUTH'],
    ] as const) {
      const failure = await startNode({ ...FAST_CLUSTER_ENV, REDIS_URL: url, PUSHGATE_REDIS_PREFIX: uniquePrefix() }).then(
        (node) => {
          cleanups.push(() => node.stop());
          return undefined;
        },
        (err: unknown) => err as Error,
      );
      expect(failure?.name).toBe('StartError');
      expect(failure!.message).toContain(`Redis refused the credentials (${code})`);
      expect(failure!.message).toContain('REDIS_URL');
      expect(failure!.message).not.toContain('Connection is closed');
      expect(failure!.message).not.toContain('not-the-password');
    }
  });
});

/** A loopback port nothing listens on (the OS handed it out, and it was closed again). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
