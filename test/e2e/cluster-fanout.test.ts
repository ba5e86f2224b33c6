import { performance } from 'node:perf_hooks';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Socket } from 'socket.io-client';
import { describe, expect, it } from 'vitest';
import { DeliveryStatus } from '../../src/gen/pushgate/v1/push_service.js';
import { RegistryKeys, userKey } from '../../src/registry/redis-keys.js';
import { clusterTestHooks, startCluster, type TestCluster } from '../support/cluster.js';
import { grpcError } from '../support/grpc-client.js';
import type { TestNode } from '../support/node.js';
import {
  CONNECTED,
  DISCONNECTED,
  eventsOf,
  OFFLINE,
  ONLINE,
  presenceStreams,
  type Summary,
  stopWatching,
  summary,
} from '../support/presence-watch.js';
import { startRedisCluster } from '../support/redis-server.js';
import { drain, serverAcks } from '../support/socket-client.js';
import { waitFor } from '../support/wait.js';

// Cluster mode end to end: several real nodes in this process share one private redis-server
// (each test with its own key prefix), real Socket.IO clients connect to different nodes, and
// backends call whichever node over real gRPC.

const {
  DELIVERY_STATUS_ACKED: ACKED,
  DELIVERY_STATUS_TIMEOUT: TIMEOUT,
  DELIVERY_STATUS_DISCONNECTED: DISCONNECTED_STATUS,
  DELIVERY_STATUS_SENT: SENT,
} = DeliveryStatus;

type Ack = (...reply: unknown[]) => void;

const { cleanups, redis } = clusterTestHooks();

async function cluster(count: number, env: Record<string, string> = {}, url = redis().url): Promise<TestNode[]> {
  const started: TestCluster = await startCluster(url, count, env);
  cleanups.push(() => started.stop());
  return started.nodes;
}

/** Connects a client and waits until every node's ListSessions shows it. */
async function connect(node: TestNode, userId: string, clientType: string, seenBy: readonly TestNode[]): Promise<Socket> {
  const socket = await node.connect(userId, clientType);
  const id = socket.id!;
  for (const other of seenBy) {
    await waitFor(`session ${id} to be listed by ${other.app.config.server.nodeId}`, async () =>
      (await other.client.listSessions({ userId })).sessions.some((s) => s.sessionId === id),
    );
  }
  return socket;
}

/** Records the data of every `event` a client receives, and whether an ack callback came with it. */
function record(socket: Socket, event: string): { data: unknown; withAck: boolean }[] {
  const seen: { data: unknown; withAck: boolean }[] = [];
  socket.onAny((name: string, ...args: unknown[]) => {
    if (name === event) seen.push({ data: args[0], withAck: typeof args.at(-1) === 'function' });
  });
  return seen;
}

function nodeIdOf(node: TestNode): string {
  return node.app.config.server.nodeId;
}

// --- WatchPresence as a backend consumes it ---

const { watch, watchLive } = presenceStreams(cleanups);

/** Events grouped by user, each user's in stream order. */
function perUser(events: readonly Summary[]): Record<string, Summary[]> {
  const grouped: Record<string, Summary[]> = {};
  for (const event of events) {
    grouped[event[1]] ??= [];
    grouped[event[1]]!.push(event);
  }
  return grouped;
}

describe('PushToUser across nodes', () => {
  it('from each node reaches the sessions of every node, each acked with its own data, oldest connection first', async () => {
    const nodes = await cluster(3);
    const placements: [TestNode, string][] = [
      [nodes[1]!, 'pc'],
      [nodes[0]!, 'app'],
      [nodes[2]!, 'web'],
    ];
    const clients: Socket[] = [];
    for (const [node, type] of placements) {
      const socket = await connect(node, 'u-1', type, nodes);
      socket.on('notice', (data: unknown, ack: Ack) => ack({ by: type, got: data }));
      clients.push(socket);
    }
    const logs = clients.map((socket) => record(socket, 'notice'));
    const listed = (await nodes[2]!.client.listSessions({ userId: 'u-1' })).sessions;
    expect(listed.map((s) => s.sessionId)).toEqual(clients.map((c) => c.id));
    // Connected one after another, each seen everywhere before the next: strictly oldest first.
    const connectedAt = listed.map((s) => s.connectedAt!.getTime());
    expect(connectedAt).toEqual([...connectedAt].sort((x, y) => x - y));

    for (const pusher of nodes) {
      const response = await pusher.client.pushToUser({ userId: 'u-1', event: 'notice', data: { from: nodeIdOf(pusher) } });
      expect(response.deliveries.map((d) => [d.session!.sessionId, d.session!.nodeId, d.session!.clientType, d.status])).toEqual(
        placements.map(([node, type], i) => [clients[i]!.id, nodeIdOf(node), type, ACKED]),
      );
      response.deliveries.forEach((delivery, i) => {
        const type = placements[i]![1];
        expect(delivery.ackData).toEqual({ by: type, got: { from: nodeIdOf(pusher) } });
        expect(delivery.latencyUs).toBeGreaterThan(0);
        expect(delivery.latencyUs).toBeLessThan(1_000_000);
        expect(delivery.error).toBe('');
        expect(delivery.session!.userId).toBe('u-1');
      });
      expect([response.acked, response.timedOut, response.failed]).toEqual([3, 0, 0]);
    }

    // client_types picks sessions on any node, matched case-insensitively.
    const appAndWeb = await nodes[1]!.client.pushToUser({ userId: 'u-1', event: 'notice', data: 'app+web', clientTypes: ['APP', 'web'] });
    expect(appAndWeb.deliveries.map((d) => [d.session!.sessionId, d.session!.nodeId, d.status])).toEqual([
      [clients[1]!.id, nodeIdOf(nodes[0]!), ACKED],
      [clients[2]!.id, nodeIdOf(nodes[2]!), ACKED],
    ]);
    const onlyPc = await nodes[2]!.client.pushToUser({ userId: 'u-1', event: 'notice', data: 'pc', clientTypes: ['pc'] });
    expect(onlyPc.deliveries.map((d) => [d.session!.sessionId, d.session!.nodeId, d.status, d.ackData])).toEqual([
      [clients[0]!.id, nodeIdOf(nodes[1]!), ACKED, { by: 'pc', got: 'pc' }],
    ]);

    await drain(nodes[0]!, 'u-1', clients);
    const everyNode = nodes.map((n) => ({ from: nodeIdOf(n) }));
    expect(logs.map((log) => log.map((e) => e.data))).toEqual([
      [...everyNode, 'pc'],
      [...everyNode, 'app+web'],
      [...everyNode, 'app+web'],
    ]);
  });

  it('with no_ack reports SENT for the sessions of every node without waiting', async () => {
    const nodes = await cluster(3);
    const clients: Socket[] = [];
    for (const [i, node] of nodes.entries()) clients.push(await connect(node, 'u-2', ['app', 'pc', 'web'][i]!, nodes));
    const logs = clients.map((socket) => record(socket, 'notice'));

    for (const pusher of nodes) {
      const started = performance.now();
      const response = await pusher.client.pushToUser({
        userId: 'u-2',
        event: 'notice',
        data: { fire: nodeIdOf(pusher) },
        noAck: true,
        ackTimeoutMs: 5000,
      });
      expect(performance.now() - started).toBeLessThan(1000);
      expect(response.deliveries.map((d) => [d.session!.sessionId, d.session!.nodeId, d.status, d.latencyUs, d.ackData, d.error])).toEqual(
        clients.map((c, i) => [c.id, nodeIdOf(nodes[i]!), SENT, 0, undefined, '']),
      );
      expect([response.acked, response.timedOut, response.failed]).toEqual([0, 0, 0]);
    }
    await waitFor('every client to get the three pushes', () => logs.every((log) => log.length === 3));
    for (const log of logs) {
      // Fire and forget: the data alone, no ack callback.
      expect(log).toEqual(nodes.map((n) => ({ data: { fire: nodeIdOf(n) }, withAck: false })));
    }
  });

  it('reports TIMEOUT for a remote client that never acks, at its ack timeout, and ACKED for the others', async () => {
    const nodes = await cluster(3);
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode];
    const local = await connect(a, 'u-3', 'app', nodes);
    const silent = await connect(b, 'u-3', 'pc', nodes);
    const remote = await connect(c, 'u-3', 'web', nodes);
    const silentLog = record(silent, 'notice');
    local.on('notice', (_data: unknown, ack: Ack) => ack('app'));
    remote.on('notice', (_data: unknown, ack: Ack) => ack('web'));

    const started = performance.now();
    const response = await a.client.pushToUser({ userId: 'u-3', event: 'notice', data: { n: 1 }, ackTimeoutMs: 400 });
    const elapsed = performance.now() - started;

    expect(elapsed).toBeGreaterThanOrEqual(395);
    // By the ack timeout, not by the timeout plus the reply grace (500 ms) after which the caller gives up on node b.
    expect(elapsed).toBeLessThan(850);
    expect(response.deliveries.map((d) => [d.session!.sessionId, d.status, d.ackData, d.error])).toEqual([
      [local.id, ACKED, 'app', ''],
      [silent.id, TIMEOUT, undefined, ''],
      [remote.id, ACKED, 'web', ''],
    ]);
    expect(response.deliveries[1]!.latencyUs).toBe(0);
    expect([response.acked, response.timedOut, response.failed]).toEqual([2, 1, 0]);
    // The silent client got the event and was asked for an ack; it just did not answer.
    expect(silentLog).toEqual([{ data: { n: 1 }, withAck: true }]);
    await waitFor('nothing left in flight', () =>
      nodes.every((n) => n.app.cluster!.bus.inFlight === 0 && n.app.local.pendingWaits() === 0),
    );
    expect(serverAcks(b, silent.id!)).toBe(0);
  });

  it('reports DISCONNECTED at once for a remote session that closes while its ack is awaited', async () => {
    const nodes = await cluster(2);
    const [a, b] = nodes as [TestNode, TestNode];
    const stays = await connect(a, 'u-4', 'app', nodes);
    const quitter = await connect(b, 'u-4', 'web', nodes);
    const quitterId = quitter.id!;
    stays.on('notice', (_data: unknown, ack: Ack) => ack('stayed'));
    quitter.on('notice', () => {
      setTimeout(() => quitter.close(), 50);
    });

    const started = performance.now();
    const response = await a.client.pushToUser({ userId: 'u-4', event: 'notice', data: 1, ackTimeoutMs: 5000 });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(response.deliveries.map((d) => [d.session!.sessionId, d.session!.nodeId, d.status])).toEqual([
      [stays.id, nodeIdOf(a), ACKED],
      [quitterId, nodeIdOf(b), DISCONNECTED_STATUS],
    ]);
    expect(response.deliveries[1]!.error).not.toBe('');
    expect([response.acked, response.timedOut, response.failed]).toEqual([1, 0, 1]);
    await waitFor('nothing left in flight', () =>
      nodes.every((n) => n.app.cluster!.bus.inFlight === 0 && n.app.local.pendingWaits() === 0),
    );
  });

  it('ends with DEADLINE_EXCEEDED at a deadline shorter than the ack wait, and leaves nothing behind on either node', async () => {
    const nodes = await cluster(2);
    const [a, b] = nodes as [TestNode, TestNode];
    const silent = await connect(b, 'u-5', 'web', nodes);
    const silentLog = record(silent, 'notice');

    const started = performance.now();
    const err = await grpcError(
      a.client.pushToUser({ userId: 'u-5', event: 'notice', data: 1, ackTimeoutMs: 5000 }, { deadline: Date.now() + 300 }),
    );
    const elapsed = performance.now() - started;
    expect(err.code).toBe(GrpcStatus.DEADLINE_EXCEEDED);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1000);
    // The push did reach node b's client, which was asked for an ack…
    expect(silentLog).toEqual([{ data: 1, withAck: true }]);
    // …and both nodes let go of it long before the 5 s ack timeout.
    await waitFor(
      'both buses idle and no ack wait left on node b',
      () => a.app.cluster!.bus.inFlight === 0 && b.app.cluster!.bus.inFlight === 0 && b.app.local.pendingWaits() === 0,
      { timeoutMs: 1500 },
    );
    expect(serverAcks(b, silent.id!)).toBe(0);

    // The session is still fine for the next push.
    silent.on('notice', (_data: unknown, ack: Ack) => ack('late but here'));
    const next = await a.client.pushToUser({ userId: 'u-5', event: 'notice', data: 2, ackTimeoutMs: 2000 });
    expect(next.deliveries.map((d) => [d.status, d.ackData])).toEqual([[ACKED, 'late but here']]);
  });
});

describe('ListSessions and DisconnectSessions across nodes', () => {
  it('lists every node’s sessions from any node, and closes sessions wherever they are held', async () => {
    const nodes = await cluster(3);
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode];
    const onA = await connect(a, 'u-6', 'app', nodes);
    const onB = await connect(b, 'u-6', 'pc', nodes);
    const onC = await connect(c, 'u-6', 'web', nodes);
    const clients = [onA, onB, onC];
    const ids = clients.map((s) => s.id!);
    const notices = clients.map(() => [] as unknown[]);
    const closeReasons = clients.map(() => [] as string[]);
    clients.forEach((socket, i) => {
      socket.on('pushgate:disconnect', (notice: unknown) => notices[i]!.push(notice));
      socket.on('disconnect', (reason: string) => closeReasons[i]!.push(reason));
    });

    for (const node of nodes) {
      const { sessions } = await node.client.listSessions({ userId: 'u-6' });
      expect(sessions.map((s) => [s.sessionId, s.nodeId, s.clientType, s.userId])).toEqual([
        [ids[0], nodeIdOf(a), 'app', 'u-6'],
        [ids[1], nodeIdOf(b), 'pc', 'u-6'],
        [ids[2], nodeIdOf(c), 'web', 'u-6'],
      ]);
      for (const session of sessions) {
        expect(session.remoteAddress).toContain('127.0.0.1');
        expect(session.lastSeenAt!.getTime()).toBeGreaterThanOrEqual(session.connectedAt!.getTime());
      }
      const filtered = await node.client.listSessions({ userId: 'u-6', clientTypes: ['web', 'PC'] });
      expect(filtered.sessions.map((s) => s.sessionId)).toEqual([ids[1], ids[2]]);
    }

    // Node a kicks the session node b holds.
    const kicked = await a.client.disconnectSessions({ userId: 'u-6', sessionIds: [ids[1]!], reason: 'password_changed' });
    expect(kicked.disconnected.map((s) => [s.sessionId, s.nodeId])).toEqual([[ids[1], nodeIdOf(b)]]);
    // Gone from the registry when the call returns, seen from any node.
    for (const node of nodes) {
      expect((await node.client.listSessions({ userId: 'u-6' })).sessions.map((s) => s.sessionId)).toEqual([ids[0], ids[2]]);
    }
    await waitFor('the kicked client to be closed', () => closeReasons[1]!.length === 1);
    expect(notices[1]).toEqual([{ reason: 'password_changed' }]);
    expect(closeReasons[1]).toEqual(['io server disconnect']);
    expect(onA.connected && onC.connected).toBe(true);
    expect(b.app.local.get(ids[1]!)).toBeUndefined();

    // Logging out everywhere from node c closes the sessions of a and c alike.
    const all = await c.client.disconnectSessions({ userId: 'u-6', reason: 'logout' });
    expect(new Set(all.disconnected.map((s) => s.sessionId))).toEqual(new Set([ids[0], ids[2]]));
    for (const node of nodes) expect((await node.client.listSessions({ userId: 'u-6' })).sessions).toEqual([]);
    await waitFor('every client to be closed', () => closeReasons.every((reasons) => reasons.length === 1));
    expect(notices).toEqual([[{ reason: 'logout' }], [{ reason: 'password_changed' }], [{ reason: 'logout' }]]);
    expect(closeReasons.flat()).toEqual(['io server disconnect', 'io server disconnect', 'io server disconnect']);
    expect(nodes.map((n) => n.app.local.size)).toEqual([0, 0, 0]);
  });

  it('closes what it can when a node holding some sessions does not answer, and fails with UNAVAILABLE naming that node', async () => {
    const nodes = await cluster(2);
    const [a, b] = nodes as [TestNode, TestNode];
    const onA = await connect(a, 'u-7', 'app', nodes);
    const onB = await connect(b, 'u-7', 'web', nodes);
    const idB = onB.id!;
    // Node b stays registered and subscribed but stops answering other nodes, as a hung node does.
    b.app.cluster!.bus.close();

    const started = performance.now();
    const err = await grpcError(a.client.disconnectSessions({ userId: 'u-7', reason: 'logout' }));
    // A disconnect waits at most 5 s for another node's confirmation.
    expect(performance.now() - started).toBeLessThan(6000);
    expect(err.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(err.details).toContain(nodeIdOf(b));
    expect(err.details).toContain('closed 1 session');
    expect(err.metadata.get('pushgate-error-code')).toEqual(['node_unreachable']);
    // Node a's session is closed; node b's is still there for a retry (or the reaper) to deal with.
    expect((await a.client.listSessions({ userId: 'u-7' })).sessions.map((s) => s.sessionId)).toEqual([idB]);
    await waitFor('node a’s client to be closed', () => !onA.connected);
    expect(onB.connected).toBe(true);
  });
});

describe('WatchPresence across nodes', () => {
  it('streams the sessions of other nodes per user in order, and resumes on another node with exactly the missed events', async () => {
    const nodes = await cluster(3);
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode];
    const stream = await watchLive(a, {});

    const one = await b.connect('u-1', 'app');
    await eventsOf(stream, 2);
    const oneWeb = await c.connect('u-1', 'web');
    await eventsOf(stream, 3);
    const two = await c.connect('u-2', 'pc');
    await eventsOf(stream, 5);
    const [oneId, oneWebId, twoId] = [one.id!, oneWeb.id!, two.id!];
    one.close();
    await eventsOf(stream, 6);
    oneWeb.close();
    const seen = await eventsOf(stream, 8);
    expect(seen).toEqual([
      [ONLINE, 'u-1', oneId, '', 1],
      [CONNECTED, 'u-1', oneId, '', 1],
      [CONNECTED, 'u-1', oneWebId, '', 2],
      [ONLINE, 'u-2', twoId, '', 1],
      [CONNECTED, 'u-2', twoId, '', 1],
      [DISCONNECTED, 'u-1', oneId, 'client_disconnect', 1],
      [DISCONNECTED, 'u-1', oneWebId, 'client_disconnect', 0],
      [OFFLINE, 'u-1', oneWebId, 'client_disconnect', 0],
    ]);
    expect(stream.events.map((e) => e.session!.nodeId)).toEqual([
      'node-b',
      'node-b',
      'node-c',
      'node-c',
      'node-c',
      'node-b',
      'node-c',
      'node-c',
    ]);
    const last = stream.events.at(-1)!.cursor;
    await stopWatching(a, stream);
    expect(stream.events).toHaveLength(8);

    // While nobody watches: u-3 arrives on node a, u-2 leaves node c, u-1 comes back on node b.
    const three = await connect(a, 'u-3', 'app', nodes);
    two.close();
    await waitFor('u-2 to be gone', async () => (await a.client.listSessions({ userId: 'u-2' })).sessions.length === 0);
    const oneAgain = await connect(b, 'u-1', 'pc', nodes);
    const missed: Summary[] = [
      [ONLINE, 'u-3', three.id, '', 1],
      [CONNECTED, 'u-3', three.id, '', 1],
      [DISCONNECTED, 'u-2', twoId, 'client_disconnect', 0],
      [OFFLINE, 'u-2', twoId, 'client_disconnect', 0],
      [ONLINE, 'u-1', oneAgain.id, '', 1],
      [CONNECTED, 'u-1', oneAgain.id, '', 1],
    ];

    const resumed = watch(c.client, { resumeAfter: last });
    expect(await eventsOf(resumed, missed.length)).toEqual(missed);
    // Then live events, from any node.
    const four = await b.connect('u-4', 'web');
    const threeId = three.id!;
    three.close();
    expect(await eventsOf(resumed, missed.length + 4)).toEqual([
      ...missed,
      [ONLINE, 'u-4', four.id, '', 1],
      [CONNECTED, 'u-4', four.id, '', 1],
      [DISCONNECTED, 'u-3', threeId, 'client_disconnect', 0],
      [OFFLINE, 'u-3', threeId, 'client_disconnect', 0],
    ]);
    const cursors = [last, ...resumed.events.map((e) => e.cursor)];
    expect(new Set(cursors).size).toBe(cursors.length);
    expect(resumed.status).toBeUndefined();
  });
});

describe('a registry split into shards', () => {
  it('with PUSHGATE_REDIS_SHARDS=4 pushes to users on every shard, and resumes with a four-position cursor', async () => {
    const nodes = await cluster(3, { PUSHGATE_REDIS_SHARDS: '4' });
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode];
    const prefix = a.app.config.redis!.keyPrefix;
    const keys = new RegistryKeys(prefix, 4);
    // Two users per shard.
    const users: string[] = [];
    for (let i = 0; users.length < 8; i++) {
      const user = `sharded-${i}`;
      if (users.filter((u) => keys.shardOf(u) === keys.shardOf(user)).length < 2) users.push(user);
    }
    expect(new Set(users.map((u) => keys.shardOf(u))).size).toBe(4);

    const stream = await watchLive(a, {});
    const clients = new Map<string, Socket[]>();
    for (const user of users) {
      const pair = [await b.connect(user, 'app'), await c.connect(user, 'web')];
      for (const socket of pair) socket.on('notice', (data: unknown, ack: Ack) => ack({ user, data }));
      clients.set(user, pair);
    }
    await eventsOf(stream, users.length * 3);
    const admin = redis().client();
    for (const user of users) {
      const response = await a.client.pushToUser({ userId: user, event: 'notice', data: 'hi' });
      expect(response.deliveries.map((d) => [d.session!.sessionId, d.session!.nodeId, d.status, d.ackData])).toEqual([
        [clients.get(user)![0]!.id, 'node-b', ACKED, { user, data: 'hi' }],
        [clients.get(user)![1]!.id, 'node-c', ACKED, { user, data: 'hi' }],
      ]);
      // The user's sessions are listed in the shard every node computes for it.
      expect(await admin.zlexcount(keys.shard(keys.shardOf(user)).byUser, `[${user}\0\0`, `(${user}\0\x01`)).toBe(2);
    }
    // Per user, in order, whichever shard the user lives in.
    const expectedLive: Record<string, Summary[]> = {};
    for (const user of users) {
      const [app, web] = clients.get(user)!;
      expectedLive[user] = [
        [ONLINE, user, app!.id, '', 1],
        [CONNECTED, user, app!.id, '', 1],
        [CONNECTED, user, web!.id, '', 2],
      ];
    }
    expect(perUser(summary(stream.events))).toEqual(expectedLive);

    const last = stream.events.at(-1)!.cursor;
    expect(last.split('.')).toHaveLength(4);
    await stopWatching(a, stream);

    // While nobody watches, every user's app session closes.
    const missed: Record<string, Summary[]> = {};
    for (const user of users) {
      const app = clients.get(user)![0]!;
      missed[user] = [[DISCONNECTED, user, app.id, 'client_disconnect', 1]];
      app.close();
    }
    await waitFor('every app session to be gone', async () => {
      for (const user of users) if ((await c.client.listSessions({ userId: user })).sessions.length !== 1) return false;
      return true;
    });

    const resumed = watch(c.client, { resumeAfter: last });
    await eventsOf(resumed, users.length);
    expect(perUser(summary(resumed.events))).toEqual(missed);
    // Then live: the web sessions close too, each user going offline.
    const webIds = users.map((user) => clients.get(user)![1]!.id);
    for (const user of users) clients.get(user)![1]!.close();
    const all = await eventsOf(resumed, users.length * 3);
    expect(all.slice(0, users.length)).toEqual(summary(resumed.events.slice(0, users.length)));
    const expectedAll: Record<string, Summary[]> = {};
    users.forEach((user, i) => {
      expectedAll[user] = [
        ...missed[user]!,
        [DISCONNECTED, user, webIds[i], 'client_disconnect', 0],
        [OFFLINE, user, webIds[i], 'client_disconnect', 0],
      ];
    });
    expect(perUser(all)).toEqual(expectedAll);
    for (const event of resumed.events) expect(event.cursor.split('.')).toHaveLength(4);
    expect(resumed.status).toBeUndefined();
  });
});

describe('on a Redis Cluster', () => {
  it('delivers across nodes, and keeps each shard’s keys in one hash slot, different shards in different slots', async () => {
    const redisCluster = await startRedisCluster(3);
    cleanups.push(() => redisCluster.stop());
    const nodes = await cluster(2, { PUSHGATE_REDIS_CLUSTER: '1', PUSHGATE_REDIS_SHARDS: '8' }, redisCluster.urls.join(','));
    const [a, b] = nodes as [TestNode, TestNode];
    const onA = await connect(a, 'u-1', 'app', nodes);
    const onB = await connect(b, 'u-1', 'web', nodes);
    onA.on('notice', (_data: unknown, ack: Ack) => ack('a'));
    onB.on('notice', (_data: unknown, ack: Ack) => ack('b'));

    for (const pusher of nodes) {
      const response = await pusher.client.pushToUser({ userId: 'u-1', event: 'notice', data: 1 });
      expect(response.deliveries.map((d) => [d.session!.sessionId, d.session!.nodeId, d.status, d.ackData])).toEqual([
        [onA.id, 'node-a', ACKED, 'a'],
        [onB.id, 'node-b', ACKED, 'b'],
      ]);
    }

    const prefix = a.app.config.redis!.keyPrefix;
    const keys = new RegistryKeys(prefix, 8);
    const shard = keys.shardOf('u-1');
    const admin = redisCluster.client();
    await admin.ping();
    const masters = admin.nodes('master');
    expect(masters).toHaveLength(3);
    const found: string[] = [];
    for (const master of masters) {
      let cursor = '0';
      do {
        const [next, batch] = await master.scan(cursor, 'MATCH', `*{s${shard}}*`, 'COUNT', 1000);
        found.push(...batch.filter((key) => key.startsWith(prefix)));
        cursor = next;
      } while (cursor !== '0');
    }
    const shardKeys = keys.shard(shard);
    expect(found.sort()).toEqual(
      [
        shardKeys.user(userKey('u-1')),
        shardKeys.events,
        shardKeys.epoch,
        shardKeys.byUser,
        shardKeys.node('node-a'),
        shardKeys.node('node-b'),
      ].sort(),
    );
    const slots = await Promise.all(found.map((key) => admin.cluster('KEYSLOT', key)));
    expect(new Set(slots).size).toBe(1);
    const shardSlots = await Promise.all(Array.from({ length: 8 }, (_, s) => admin.cluster('KEYSLOT', keys.shard(s).byUser)));
    expect(new Set(shardSlots).size).toBe(8);
  });
});
