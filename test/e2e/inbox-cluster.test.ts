import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { DeliveryMode, RemovalPolicy } from '../../src/gen/pushgate/v1/inbox.js';
import { DeliveryStatus, type PushToUserResponse } from '../../src/gen/pushgate/v1/push_service.js';
import { clusterTestHooks, FAST_CLUSTER_ENV, startCluster } from '../support/cluster.js';
import type { TestPushClient } from '../support/grpc-client.js';
import { type Device, type DeviceOptions, inboxDevices } from '../support/inbox-devices.js';
import type { TestNode } from '../support/node.js';
import { startNodeProcess, stopAllNodes } from '../support/node-process.js';
import { seededRandom } from '../support/prng.js';
import { type StartRedisOptions, startRedis, type TestRedis } from '../support/redis-server.js';
import { signToken } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

// The offline inbox in cluster mode: nodes in this process (and real node processes where one must
// die) sharing a private redis-server, real Socket.IO clients. What one node stores, every node
// lists, replays and removes; nothing reaches a user it was not pushed to; a node's death or a
// Redis restart loses nothing that Redis itself kept.

const LIVE = DeliveryMode.DELIVERY_MODE_LIVE;
const STORE_IF_UNACKED = DeliveryMode.DELIVERY_MODE_STORE_IF_UNACKED;
const STORE = DeliveryMode.DELIVERY_MODE_STORE;
const { DELIVERY_STATUS_FAILED: FAILED, DELIVERY_STATUS_TIMEOUT: TIMEOUT, DELIVERY_STATUS_DISCONNECTED: DISCONNECTED } = DeliveryStatus;
const TYPES = ['app', 'pc', 'web'] as const;
/** Short ack waits, so pushes to silent clients and replays that are never acked end quickly. */
const QUICK_ACKS = { PUSHGATE_ACK_TIMEOUT_MS: '800' };

const { cleanups, redis } = clusterTestHooks();
const devices = inboxDevices();

/** In-process nodes on `url` (this file's Redis by default), one deployment with a fresh key prefix. */
async function cluster(count: number, url = redis().url, env: Record<string, string> = {}): Promise<{ nodes: TestNode[]; prefix: string }> {
  const started = await startCluster(url, count, { ...QUICK_ACKS, ...env });
  cleanups.push(() => started.stop());
  // Runs before the nodes stop: no replay or push is left waiting on a client during shutdown.
  cleanups.push(() => devices.closeAll());
  return started;
}

/** A private redis-server for one test (the restart tests), stopped after the test's nodes. */
async function ownRedis(options: StartRedisOptions = {}): Promise<TestRedis> {
  const server = await startRedis(options);
  cleanups.push(() => server.stop());
  return server;
}

function device(node: { httpUrl: string }, userId: string, clientType: string, options?: DeviceOptions): Promise<Device> {
  return devices.device(node.httpUrl, userId, clientType, options);
}

async function inboxIds(node: { client: TestPushClient }, userId: string): Promise<string[]> {
  const { messages } = await node.client.listInbox({ userId });
  return messages.map((m) => m.messageId);
}

/** The inbox as a node lists it, or undefined while that node cannot reach Redis. */
async function inboxIdsOrNothing(node: TestNode, userId: string): Promise<string[] | undefined> {
  try {
    return await inboxIds(node, userId);
  } catch {
    return undefined;
  }
}

function ids(device: Device): string[] {
  return device.seen.map((s) => s.meta!.messageId);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('offline inbox across in-process nodes', () => {
  it('stores through A, lists and replays through B; the ack on B empties it for A', async () => {
    const [a, b] = (await cluster(2)).nodes as [TestNode, TestNode];
    const pushed = await a.client.pushToUser({
      userId: 'u1',
      event: 'notice',
      data: { user: 'u1', title: 'approve PO-7' },
      messageId: 'po-7',
      deliveryMode: STORE_IF_UNACKED,
    });
    expect(pushed.deliveries).toEqual([]);
    expect(pushed.stored).toBe(true);
    expect(await inboxIds(b, 'u1')).toEqual(['po-7']);

    const phone = await device(b, 'u1', 'app');
    await waitFor('the replay on B', () => phone.seen.length === 1);
    expect(phone.seen[0]!.data).toEqual({ user: 'u1', title: 'approve PO-7' });
    expect(phone.seen[0]!.meta).toMatchObject({ messageId: 'po-7', replay: true, attempt: 1 });
    // Delivered but not acked: still stored, for every node.
    expect(await inboxIds(a, 'u1')).toEqual(['po-7']);
    phone.seen[0]!.ack('read');
    await waitFor('A to list an empty inbox', async () => (await inboxIds(a, 'u1')).length === 0);
    expect(await inboxIds(b, 'u1')).toEqual([]);
  });

  it('replays messages stored alternately through A and B in push order, then pushes that raced the replay', async () => {
    const [a, b] = (await cluster(2)).nodes as [TestNode, TestNode];
    for (const [i, node] of [a, b, a].entries()) {
      const pushed = await node.client.pushToUser({
        userId: 'u2',
        event: 'notice',
        data: { user: 'u2', n: i + 1 },
        messageId: `o${i + 1}`,
        deliveryMode: STORE_IF_UNACKED,
      });
      expect(pushed.stored).toBe(true);
    }
    expect(await inboxIds(b, 'u2')).toEqual(['o1', 'o2', 'o3']);

    const client = await device(b, 'u2', 'app', { autoAck: true });
    // Pushed at once, while the replay is running: a stored one through A and a live one through B.
    const racing = [
      await a.client.pushToUser({ userId: 'u2', event: 'notice', data: { user: 'u2', n: 4 }, messageId: 'o4', deliveryMode: STORE }),
      await b.client.pushToUser({ userId: 'u2', event: 'notice', data: { user: 'u2', n: 5 }, messageId: 'o5' }),
    ];
    expect(racing.map((r) => [r.acked, r.stored])).toEqual([
      [1, false],
      [1, false],
    ]);
    await waitFor('all five at the client', () => new Set(ids(client)).size === 5);
    // A message may come twice (replayed, and live on its way): the same id, so a client drops it.
    expect([...new Set(ids(client))]).toEqual(['o1', 'o2', 'o3', 'o4', 'o5']);
    expect(client.seen.slice(0, 3).map((s) => s.meta!.replay)).toEqual([true, true, true]);
    expect(client.seen.map((s) => (s.data as { n: number }).n)).toEqual(ids(client).map((id) => Number(id.slice(1))));
    await waitFor('every message acked away', async () => (await inboxIds(a, 'u2')).length === 0);
  });

  it('replays a message stored through A with a client-type filter only to that type on B', async () => {
    const [a, b] = (await cluster(2)).nodes as [TestNode, TestNode];
    const pushed = await a.client.pushToUser({
      userId: 'u8',
      event: 'notice',
      data: { user: 'u8', for: 'apps' },
      messageId: 'apps-only',
      clientTypes: ['app'],
      deliveryMode: STORE,
    });
    expect(pushed.stored).toBe(true);
    const [web, app] = await Promise.all([device(b, 'u8', 'web', { autoAck: true }), device(b, 'u8', 'app')]);
    await waitFor('the app got it', () => app.seen.length === 1);
    // Live pushes wait for a session's replay to end: once a live marker reached the web client, any
    // replay to it would have come first.
    const marker = await a.client.pushToUser({ userId: 'u8', event: 'notice', data: { user: 'u8', marker: true }, clientTypes: ['web'] });
    expect(marker.acked).toBe(1);
    expect(web.seen.map((s) => s.data)).toEqual([{ user: 'u8', marker: true }]);
    expect(app.seen[0]!.meta).toMatchObject({ messageId: 'apps-only', replay: true });
    expect(await inboxIds(a, 'u8')).toEqual(['apps-only']);
    app.seen[0]!.ack();
    await waitFor('the app ack to empty the inbox', async () => (await inboxIds(a, 'u8')).length === 0);
  });

  it('counts a STORE push that timed out on another node as an attempt: the replay is attempt 2', async () => {
    const [a, b] = (await cluster(2)).nodes as [TestNode, TestNode];
    const silent = await device(b, 'u3', 'pc');
    await waitFor('A to see the session on B', async () => (await a.client.listSessions({ userId: 'u3' })).sessions.length === 1);
    const pushed = await a.client.pushToUser({
      userId: 'u3',
      event: 'notice',
      data: { user: 'u3' },
      messageId: 't1',
      ackTimeoutMs: 300,
      deliveryMode: STORE,
    });
    expect(pushed.deliveries.map((d) => d.status)).toEqual([TIMEOUT]);
    expect(pushed.stored).toBe(true);
    expect(silent.seen.map((s) => s.meta)).toEqual([expect.objectContaining({ messageId: 't1', replay: false, attempt: 1 })]);
    silent.socket.close();
    const back = await device(a, 'u3', 'pc', { autoAck: true });
    await waitFor('the replay on A', () => back.seen.length === 1);
    expect(back.seen[0]!.meta).toMatchObject({ messageId: 't1', replay: true });
    expect.soft(back.seen[0]!.meta!.attempt, 'meta.attempt of a STORE replay after a timed-out live delivery').toBe(2);
    await waitFor('the ack to empty the inbox', async () => (await inboxIds(b, 'u3')).length === 0);
  });

  it('lets legacy clients without metadata (v4 and v2) replay with (data, ack) in cluster mode', async () => {
    const [a, b] = (await cluster(2)).nodes as [TestNode, TestNode];
    await a.client.pushToUser({ userId: 'u6', event: 'notice', data: { user: 'u6', legacy: 'v4' }, deliveryMode: STORE });
    const v4 = await device(b, 'u6', 'web', { meta: false });
    await waitFor('the v4 replay', () => v4.seen.length === 1);
    expect(v4.seen[0]).toMatchObject({ data: { user: 'u6', legacy: 'v4' }, args: 2 });
    v4.seen[0]!.ack();
    await waitFor('the v4 ack to empty the inbox', async () => (await inboxIds(a, 'u6')).length === 0);

    await b.client.pushToUser({ userId: 'u6', event: 'notice', data: { user: 'u6', legacy: 'v2' }, deliveryMode: STORE });
    const received: unknown[][] = [];
    const v2 = openV2(a.httpUrl, { token: await signToken('u6'), clientType: 'app' });
    cleanups.push(() => v2.close());
    v2.on('notice', (...args: unknown[]) => {
      received.push(args);
      (args[1] as () => void)();
    });
    await waitFor('the v2 replay', () => received.length === 1);
    expect(received[0]).toEqual([{ user: 'u6', legacy: 'v2' }, expect.any(Function)]);
    await waitFor('the v2 ack to empty the inbox', async () => (await inboxIds(b, 'u6')).length === 0);
  });
});

interface V2Socket {
  on(event: string, listener: (...args: never[]) => void): V2Socket;
  close(): void;
}
const ioV2 = createRequire(import.meta.url)('socket.io-client-v2') as (url: string, options?: object) => V2Socket;

/** A Socket.IO v2 client (EIO3), as legacy apps connect: token and client type in the query. */
function openV2(httpUrl: string, query: Record<string, string>): V2Socket {
  return ioV2(`${httpUrl}?${new URLSearchParams(query).toString()}`, { transports: ['websocket'], reconnection: false, forceNew: true });
}

describe('offline inbox when the node holding the only session is killed (SIGKILL) mid-delivery', () => {
  it.each([
    ['STORE_IF_UNACKED', STORE_IF_UNACKED],
    ['STORE', STORE],
  ])('%s: the waiting push ends with the message stored, and the client gets it again on another node', async (name, mode) => {
    cleanups.push(() => stopAllNodes());
    const { nodes, prefix } = await cluster(1);
    const survivor = nodes[0]!;
    const doomed = await startNodeProcess({
      ...FAST_CLUSTER_ENV,
      ...QUICK_ACKS,
      REDIS_URL: redis().url,
      PUSHGATE_REDIS_PREFIX: prefix,
      PUSHGATE_NODE_ID: 'doomed',
    });
    const silent = await device(doomed, 'u4', 'app');
    await waitFor('the survivor to see the session on the doomed node', async () => {
      const { sessions } = await survivor.client.listSessions({ userId: 'u4' });
      return sessions.length === 1 && sessions[0]!.nodeId === 'doomed';
    });

    const pushedAt = Date.now();
    const push = survivor.client.pushToUser(
      { userId: 'u4', event: 'notice', data: { user: 'u4', n: 1 }, messageId: 'k1', ackTimeoutMs: 2000, deliveryMode: mode },
      { deadline: pushedAt + 10_000 },
    );
    await waitFor('the client on the doomed node to receive it (and not ack)', () => silent.seen.length === 1);
    expect(silent.seen[0]!.meta).toMatchObject({ messageId: 'k1', replay: false, attempt: 1 });
    // STORE keeps it before sending: it is listed while the push still waits for the ack.
    if (mode === STORE) expect(await inboxIds(survivor, 'u4')).toEqual(['k1']);
    let settled = false;
    void push.finally(() => (settled = true)).catch(() => undefined);
    expect(settled).toBe(false);

    expect(doomed.signal('SIGKILL')).toBe(true);
    expect(await doomed.waitForExit(5000)).toEqual({ code: null, signal: 'SIGKILL' });
    const response: PushToUserResponse = await push;
    // Bounded by the ack timeout plus the reply grace (500 ms), with slack for a loaded machine.
    expect(Date.now() - pushedAt).toBeLessThan(2000 + 500 + 1500);
    const [outcome] = response.deliveries;
    console.info(
      `[measured] ${name}: push answered ${Date.now() - pushedAt} ms after it started: ${DeliveryStatus[outcome!.status]} (${outcome!.error})`,
    );
    expect(response.deliveries).toHaveLength(1);
    expect([FAILED, DISCONNECTED, TIMEOUT]).toContain(response.deliveries[0]!.status);
    expect(response.acked).toBe(0);
    expect(response.stored).toBe(true);
    expect(await inboxIds(survivor, 'u4')).toEqual(['k1']);
    await waitFor('the client to notice its node died', () => !silent.socket.connected);

    const back = await device(survivor, 'u4', 'app');
    await waitFor('the replay on the survivor', () => back.seen.length === 1);
    expect(back.seen[0]!.data).toEqual({ user: 'u4', n: 1 });
    expect(back.seen[0]!.meta).toMatchObject({ messageId: 'k1', replay: true });
    // The client did receive attempt 1 on the dead node: the replay is a second attempt.
    expect.soft(back.seen[0]!.meta!.attempt, 'meta.attempt of the replay after the node died').toBeGreaterThanOrEqual(2);
    back.seen[0]!.ack('read');
    await waitFor('the ack to empty the inbox', async () => (await inboxIds(survivor, 'u4')).length === 0);
  });
});

describe('offline inbox isolation across nodes (randomized, seeded)', () => {
  it('never hands a message to another user or a filtered-out client type, and delivers every stored message', async () => {
    const seed = Number(process.env.INBOX_CLUSTER_SEED ?? Date.now() % 2_147_483_647);
    const why = `choices seeded with ${seed} (rerun with INBOX_CLUSTER_SEED=${seed}; timings still vary)`;
    // One stream per actor, so each actor's choices depend on the seed alone, not on interleaving.
    const pushChoice = seededRandom(seed);
    const churnChoice = seededRandom(seed ^ 0x5bd1e995);
    const nodes = (await cluster(2, redis().url, { PUSHGATE_ACK_TIMEOUT_MS: '500' })).nodes;
    const users = Array.from({ length: 20 }, (_, i) => `r${i}`);
    const everyDevice: Device[] = [];
    const open: Device[] = [];

    let pushing = true;
    const churn = (async () => {
      while (pushing) {
        if (open.length < 20 && (open.length === 0 || churnChoice() < 0.6)) {
          const options = { autoAck: churnChoice() < 0.7, meta: churnChoice() < 0.8 };
          const opened = await device(pickFrom(churnChoice, nodes), pickFrom(churnChoice, users), pickFrom(churnChoice, TYPES), options);
          everyDevice.push(opened);
          open.push(opened);
        } else {
          open.splice(Math.floor(churnChoice() * open.length), 1)[0]!.socket.close();
        }
        await sleep(Math.floor(churnChoice() * 15));
      }
    })();

    const pushes: RandomPush[] = [];
    let next = 0;
    const pusher = async (): Promise<void> => {
      while (next < 100) {
        const n = next++;
        const userId = pickFrom(pushChoice, users);
        const mode = pickFrom(pushChoice, [LIVE, STORE_IF_UNACKED, STORE]);
        const clientTypes = pushChoice() < 0.5 ? [] : TYPES.filter(() => pushChoice() < 0.5);
        const removal = mode !== LIVE && pushChoice() < 0.3 ? RemovalPolicy.REMOVAL_POLICY_EACH_CLIENT_TYPE : undefined;
        const id = `m${n}`;
        const response = await pickFrom(pushChoice, nodes).client.pushToUser({
          userId,
          event: 'notice',
          data: { user: userId, types: clientTypes, id },
          messageId: id,
          clientTypes,
          ackTimeoutMs: 300,
          ...(mode !== LIVE && { deliveryMode: mode }),
          ...(removal !== undefined && { removal }),
        });
        pushes.push({ id, userId, clientTypes, mode, response });
        await sleep(Math.floor(pushChoice() * 60));
      }
    };
    try {
      await Promise.all(Array.from({ length: 8 }, pusher));
    } finally {
      pushing = false;
      await churn;
    }
    for (const client of open.splice(0)) client.socket.close();
    const duringRun = everyDevice.reduce((sum, client) => sum + client.seen.length, 0);
    for (const { id, mode, response } of pushes) {
      if (mode === LIVE) expect(response.stored, `${id} LIVE; ${why}`).toBe(false);
      if (mode === STORE_IF_UNACKED) expect(response.stored, `${id} STORE_IF_UNACKED; ${why}`).toBe(response.acked === 0);
      if (mode === STORE && response.acked === 0) expect(response.stored, `${id} STORE; ${why}`).toBe(true);
    }

    // Every user comes back with one client of each type, on either node: what is stored goes to them.
    const finals = await Promise.all(
      users.flatMap((userId, u) => TYPES.map((type, t) => device(nodes[(u + t) % 2]!, userId, type, { autoAck: true }))),
    );
    everyDevice.push(...finals);
    await waitFor(
      'every inbox to be acked empty',
      async () => {
        const lists = await Promise.all(users.map((userId, u) => inboxIds(nodes[u % 2]!, userId)));
        return lists.every((list) => list.length === 0);
      },
      { timeoutMs: 15_000, intervalMs: 100 },
    );

    let received = 0;
    for (const client of everyDevice) {
      for (const seen of client.seen) {
        received++;
        const data = seen.data as { user: string; types: string[]; id: string };
        const where = `${data.id} at ${client.userId}/${client.clientType}; ${why}`;
        expect(data.user, where).toBe(client.userId);
        if (data.types.length > 0) expect(data.types, where).toContain(client.clientType);
        if (seen.meta !== undefined) expect(seen.meta.messageId, where).toBe(data.id);
      }
    }
    for (const push of pushes.filter((p) => p.response.stored)) {
      const reached = everyDevice.some(
        (client) =>
          client.userId === push.userId &&
          (push.clientTypes.length === 0 || push.clientTypes.includes(client.clientType)) &&
          client.seen.some((seen) => (seen.data as { id: string }).id === push.id),
      );
      expect(reached, `stored ${push.id} for ${push.userId} [${push.clientTypes}] was never delivered; ${why}`).toBe(true);
    }
    console.info(
      `[measured] randomized run: ${pushes.filter((p) => p.response.stored).length} of 100 pushes stored, ` +
        `${everyDevice.length} clients, ${received} notices received (${duringRun} during the run); ${why}`,
    );
  }, 40_000);
});

interface RandomPush {
  readonly id: string;
  readonly userId: string;
  readonly clientTypes: readonly string[];
  readonly mode: DeliveryMode;
  readonly response: PushToUserResponse;
}

function pickFrom<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

describe('offline inbox through a Redis restart', () => {
  /** Every write is on disk before Redis answers it: a SIGKILL loses nothing that was acknowledged. */
  const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];

  it('keeps the inbox when Redis restarts with AOF on (appendfsync always)', async () => {
    const aof = await ownRedis({ args: AOF });
    const setting = await aof.client().call('CONFIG', 'GET', 'appendonly');
    expect(JSON.stringify(setting), 'startRedis must pass `args` to redis-server and keep them for restart()').toContain('yes');
    const [a, b] = (await cluster(2, aof.url)).nodes as [TestNode, TestNode];
    for (const n of [1, 2]) {
      const pushed = await a.client.pushToUser({
        userId: 'u5',
        event: 'notice',
        data: { user: 'u5', n },
        messageId: `keep-${n}`,
        deliveryMode: STORE,
      });
      expect(pushed.stored).toBe(true);
    }

    await aof.restart();
    const listed = await waitFor('B to list the inbox after the restart', () => inboxIdsOrNothing(b, 'u5'), {
      timeoutMs: 8000,
      intervalMs: 100,
    });
    expect(listed).toEqual(['keep-1', 'keep-2']);
    const client = await device(b, 'u5', 'app', { autoAck: true });
    await waitFor('both replayed', () => client.seen.length === 2);
    expect(client.seen.map((s) => [s.meta!.messageId, s.meta!.replay])).toEqual([
      ['keep-1', true],
      ['keep-2', true],
    ]);
    await waitFor('the acks to empty the inbox', async () => (await inboxIds(a, 'u5')).length === 0);
  });

  it('loses the inbox when Redis restarts without persistence, and keeps working: a later push is stored and replayed', async () => {
    const plain = await ownRedis();
    const [a, b] = (await cluster(2, plain.url)).nodes as [TestNode, TestNode];
    const online = await device(a, 'u7-live', 'web', { autoAck: true });
    const before = await a.client.pushToUser({
      userId: 'u7',
      event: 'notice',
      data: { user: 'u7', n: 1 },
      messageId: 'lost',
      deliveryMode: STORE,
    });
    expect(before.stored).toBe(true);

    await plain.restart();
    // The documented loss: what only Redis held is gone, and the nodes say so rather than fail.
    const listed = await waitFor('B to answer ListInbox again', () => inboxIdsOrNothing(b, 'u7'), { timeoutMs: 8000, intervalMs: 100 });
    expect(listed).toEqual([]);
    await waitFor('both nodes healthy again', () => a.app.status === 'ok' && b.app.status === 'ok', { timeoutMs: 8000 });
    await waitFor(
      'the live session to be registered again',
      async () => (await b.client.listSessions({ userId: 'u7-live' })).sessions.length === 1,
      {
        timeoutMs: 8000,
        intervalMs: 100,
      },
    );
    expect(online.socket.connected).toBe(true);
    expect((await b.client.pushToUser({ userId: 'u7-live', event: 'notice', data: { user: 'u7-live' } })).acked).toBe(1);

    const after = await b.client.pushToUser({
      userId: 'u7',
      event: 'notice',
      data: { user: 'u7', n: 2 },
      messageId: 'after',
      deliveryMode: STORE_IF_UNACKED,
    });
    expect(after.stored).toBe(true);
    expect(await inboxIds(a, 'u7')).toEqual(['after']);
    const client = await device(a, 'u7', 'pc');
    await waitFor('the replay after the restart', () => client.seen.length === 1);
    expect(client.seen[0]!.meta).toMatchObject({ messageId: 'after', replay: true, attempt: 1 });
    client.seen[0]!.ack();
    await waitFor('the ack to empty the inbox', async () => (await inboxIds(b, 'u7')).length === 0);
  });
});
