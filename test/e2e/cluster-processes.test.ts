import { type AddressInfo, connect as connectTcp, createServer, type Server as TcpServer, type Socket as TcpSocket } from 'node:net';
import type { ClientReadableStream, StatusObject } from '@grpc/grpc-js';
import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { PresenceEvent, PresenceEventKind } from '../../src/gen/pushgate/v1/presence.js';
import {
  DeliveryStatus,
  type PushToUserResponse,
  WatchPresenceRequest,
  type WatchPresenceResponse,
} from '../../src/gen/pushgate/v1/push_service.js';
import { type NodeProcess, spawnNode, startNodeProcess, stopAllNodes } from '../support/node-process.js';
import { CONNECTED, DISCONNECTED, OFFLINE, ONLINE, SNAPSHOT_COMPLETE } from '../support/presence-watch.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { waitFor } from '../support/wait.js';

// Cluster mode as operators run it: separate pushgate processes sharing one real Redis, real
// Socket.IO clients and gRPC callers in this process, and nodes that die (SIGKILL), hang (SIGSTOP),
// come back (SIGCONT) or leave cleanly (SIGTERM).

const { DELIVERY_STATUS_ACKED: ACKED, DELIVERY_STATUS_FAILED: FAILED } = DeliveryStatus;

const LEASE_MS = 1500;
const REAP_INTERVAL_MS = 300;
const COMMAND_TIMEOUT_MS = 500;
const ACK_TIMEOUT_MS = 1000;
const REPLY_GRACE_MS = 300;
/** Scheduling slack allowed on top of a bound the design promises (2 loaded cores, 3 node processes). */
const MARGIN_MS = 1000;
/** Ping settings for tests that stop a node: no client or server gives up on a connection meanwhile. */
const PATIENT_PINGS = { PUSHGATE_PING_INTERVAL_MS: '30000', PUSHGATE_PING_TIMEOUT_MS: '30000' };

let redis: TestRedis;
let testNumber = 0;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterEach(async () => {
  // Streams and clients first, then the processes.
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await stopAllNodes();
});

afterAll(async () => {
  await stopAllNodes();
  await redis?.stop();
});

/** The key prefix of the current test: each test is its own deployment in the shared Redis. */
let prefix = '';

/**
 * Starts one node process per id, all at once, as one deployment (this test's key prefix), with
 * `env` on top of the short test timings and `perNode[id]` on top of that.
 */
async function startCluster(
  ids: readonly string[],
  env: Record<string, string> = {},
  perNode: Record<string, Record<string, string>> = {},
): Promise<NodeProcess[]> {
  testNumber++;
  prefix = `t${testNumber}:`;
  const nodes = await Promise.allSettled(
    ids.map((id) =>
      startNodeProcess({
        REDIS_URL: redis.url,
        PUSHGATE_REDIS_PREFIX: prefix,
        PUSHGATE_NODE_ID: id,
        PUSHGATE_NODE_LEASE_MS: String(LEASE_MS),
        PUSHGATE_REAP_INTERVAL_MS: String(REAP_INTERVAL_MS),
        PUSHGATE_REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
        PUSHGATE_ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
        PUSHGATE_NODE_REPLY_GRACE_MS: String(REPLY_GRACE_MS),
        PUSHGATE_SHUTDOWN_GRACE_MS: '2000',
        ...env,
        ...perNode[id],
      }),
    ),
  );
  const failed = nodes.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  return nodes.map((result) => (result as PromiseFulfilledResult<NodeProcess>).value);
}

/** A client that acks every `notice` with who it is, and records what it received. */
interface Client {
  readonly socket: Socket;
  readonly sessionId: string;
  readonly nodeId: string;
  readonly clientType: string;
  /** The `n` of each notice received, in order. */
  readonly received: number[];
  /** How the connection ended, once it did. */
  disconnectReason: string | undefined;
}

async function connect(node: NodeProcess, userId: string, clientType: string): Promise<Client> {
  const socket = await node.connect(userId, clientType);
  const client: Client = { socket, sessionId: socket.id!, nodeId: node.nodeId, clientType, received: [], disconnectReason: undefined };
  socket.on('notice', (data: { n: number }, ack: (reply: unknown) => void) => {
    client.received.push(data.n);
    ack({ node: node.nodeId, clientType, n: data.n });
  });
  socket.on('disconnect', (reason: string) => (client.disconnectReason = reason));
  return client;
}

/** What a presence consumer acts on, plus when this process received it. */
interface Seen {
  readonly kind: PresenceEventKind;
  readonly userId: string;
  readonly sessionId: string | undefined;
  readonly nodeId: string | undefined;
  readonly reason: string;
  readonly sessionCount: number;
  readonly atMs: number;
  readonly receivedAtMs: number;
}

/** A WatchPresence stream started with a snapshot: `live` holds what came after SNAPSHOT_COMPLETE. */
interface Watcher {
  readonly node: string;
  readonly snapshot: Seen[];
  readonly live: Seen[];
  status: StatusObject | undefined;
}

/** Opens a WatchPresence stream with a snapshot and resolves once SNAPSHOT_COMPLETE arrived (the stream is live). */
async function watch(node: NodeProcess, userIds: string[]): Promise<Watcher> {
  const call: ClientReadableStream<WatchPresenceResponse> = node.client.raw.watchPresence(
    WatchPresenceRequest.fromPartial({ userIds, includeSnapshot: true }),
  );
  const watcher: Watcher = { node: node.nodeId, snapshot: [], live: [], status: undefined };
  let complete = false;
  call.on('data', ({ event }: WatchPresenceResponse) => {
    const e = event as PresenceEvent;
    if (e.kind === SNAPSHOT_COMPLETE) {
      complete = true;
      return;
    }
    const seen: Seen = {
      kind: e.kind,
      userId: e.userId,
      sessionId: e.session?.sessionId,
      nodeId: e.session?.nodeId,
      reason: e.reason,
      sessionCount: e.sessionCount,
      atMs: e.at === undefined ? 0 : e.at.getTime(),
      receivedAtMs: Date.now(),
    };
    (complete ? watcher.live : watcher.snapshot).push(seen);
  });
  call.on('status', (status: StatusObject) => (watcher.status = status));
  call.on('error', () => {});
  cleanups.push(() => call.cancel());
  await waitFor(`the presence snapshot from ${node.nodeId}`, () => {
    if (watcher.status !== undefined) {
      throw new Error(`WatchPresence on ${node.nodeId} ended: ${watcher.status.details}; its errors: ${errorsOf(node)}`);
    }
    return complete;
  });
  return watcher;
}

type Row = [kind: PresenceEventKind, userId: string, sessionId: string | undefined, reason: string, sessionCount: number];

function rows(events: readonly Seen[]): Row[] {
  return events.map((e) => [e.kind, e.userId, e.sessionId, e.reason, e.sessionCount]);
}

/** Sorted, for comparing event sets whose order across sessions is not defined. */
function sortedRows(events: readonly Seen[]): Row[] {
  return rows(events).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
}

/** Per user, the events in order (the order the contract defines). */
function byUser(events: readonly Seen[]): Map<string, Row[]> {
  const users = new Map<string, Row[]>();
  for (const row of rows(events)) users.set(row[1], [...(users.get(row[1]) ?? []), row]);
  return users;
}

/** The session ids of `userId` ListSessions reports on `node`, with their node. */
async function listed(node: NodeProcess, userId: string): Promise<[sessionId: string, nodeId: string][]> {
  const { sessions } = await node.client.listSessions({ userId });
  return sessions.map((s) => [s.sessionId, s.nodeId]);
}

/** Delivery outcomes by session id: status, node, ack data and error. */
function outcomes(response: PushToUserResponse): Map<string, { status: DeliveryStatus; nodeId: string; ackData: unknown; error: string }> {
  return new Map(
    response.deliveries.map((d) => [
      d.session!.sessionId,
      { status: d.status, nodeId: d.session!.nodeId, ackData: d.ackData, error: d.error },
    ]),
  );
}

/** ACKED by this client, with its own ack data and node. */
function ackedBy(client: Client, n: number): { status: DeliveryStatus; nodeId: string; ackData: unknown; error: string } {
  return { status: ACKED, nodeId: client.nodeId, ackData: { node: client.nodeId, clientType: client.clientType, n }, error: '' };
}

/** A node's logged faults, for failure messages. */
function errorsOf(node: NodeProcess): string {
  return JSON.stringify(
    node
      .logLines()
      .filter((line) => (line.level as number) >= 50)
      .slice(-3),
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Measurements worth reading in the test output (and in reports). */
function measured(what: string, value: unknown): void {
  console.info(`[measured] ${what}: ${typeof value === 'number' ? `${value} ms` : JSON.stringify(value)}`);
}

describe('pushgate cluster as separate processes sharing one Redis', () => {
  it('pushes from any of three nodes reach every session of a user, each ACKED with its node and its own ack data', async () => {
    const [a, b, c] = await startCluster(['t-a', 't-b', 't-c']);
    const clients = [await connect(a!, 'u-1', 'app'), await connect(b!, 'u-1', 'pc'), await connect(c!, 'u-1', 'web')];
    await waitFor('every node to list all three sessions', async () => {
      const lists = await Promise.all([a!, b!, c!].map((node) => listed(node, 'u-1')));
      return lists.every((list) => list.length === 3);
    });
    expect((await listed(b!, 'u-1')).sort()).toEqual(clients.map((cl) => [cl.sessionId, cl.nodeId]).sort());

    let n = 0;
    for (const node of [a!, b!, c!]) {
      n++;
      const response = await node.client.pushToUser({ userId: 'u-1', event: 'notice', data: { n } });
      expect(response.deliveries).toHaveLength(3);
      expect(outcomes(response)).toEqual(new Map(clients.map((client) => [client.sessionId, ackedBy(client, n)])));
      expect(response.acked).toBe(3);
      expect(response.failed).toBe(0);
    }
    for (const client of clients) expect(client.received).toEqual([1, 2, 3]);
  }, 40_000);

  it('reaps a SIGKILLed node within lease TTL + reap interval: node_lost once per session on every watcher, pushes reach the rest', async () => {
    const [a, b, c] = await startCluster(['k-a', 'k-b', 'k-c']);
    const onA = await connect(a!, 'u-1', 'app');
    const onB = await connect(b!, 'u-1', 'pc');
    const onC1 = await connect(c!, 'u-1', 'web');
    const onC2 = await connect(c!, 'u-1', 'app');
    const onlyOnC = await connect(c!, 'u-2', 'pc');
    await waitFor(
      'a survivor to list every session',
      async () => (await listed(a!, 'u-1')).length === 4 && (await listed(a!, 'u-2')).length === 1,
    );
    const watchers = [await watch(a!, ['u-1', 'u-2']), await watch(b!, ['u-1', 'u-2'])];
    for (const watcher of watchers) expect(watcher.snapshot).toHaveLength(5);

    const killedAt = Date.now();
    c!.signal('SIGKILL');
    expect(await c!.waitForExit(5000)).toEqual({ code: null, signal: 'SIGKILL' });

    const cSessions = [onC1.sessionId, onC2.sessionId, onlyOnC.sessionId];
    // Before the reap, the dead node is still listed: a push fails its sessions, naming it, and
    // does not wait for the ack timeout (Redis reports no listener on the dead node's channel).
    const pushedAt = Date.now();
    const duringWindow = a!.client
      .pushToUser({ userId: 'u-1', event: 'notice', data: { n: 0 } })
      .then((response) => ({ response, ms: Date.now() - pushedAt }));
    const goneAt = await waitFor(
      "the killed node's sessions to leave ListSessions on a survivor",
      async () => {
        const left = [...(await listed(b!, 'u-1')), ...(await listed(b!, 'u-2'))];
        return left.some(([, node]) => node === c!.nodeId) ? undefined : Date.now();
      },
      { timeoutMs: LEASE_MS + REAP_INTERVAL_MS + 10_000, intervalMs: 20 },
    );
    const reapLatency = goneAt - killedAt;
    measured('SIGKILL → sessions gone from ListSessions', reapLatency);
    // Not before the lease can have lapsed (renewed every third of its TTL, so it lapses two thirds
    // of a TTL after the kill at the earliest; half leaves room for a late renewal on a loaded
    // machine), and no later than the TTL plus one reap interval (plus scheduling slack).
    expect(reapLatency).toBeGreaterThanOrEqual(LEASE_MS / 2);
    expect(reapLatency).toBeLessThanOrEqual(LEASE_MS + REAP_INTERVAL_MS + MARGIN_MS);
    expect((await listed(a!, 'u-1')).sort()).toEqual(
      [
        [onA.sessionId, a!.nodeId],
        [onB.sessionId, b!.nodeId],
      ].sort(),
    );
    expect(await listed(a!, 'u-2')).toEqual([]);

    const { response: windowResponse, ms: windowMs } = await duringWindow;
    measured('PushToUser between SIGKILL and the reap', windowMs);
    const windowResults = outcomes(windowResponse);
    expect(windowResults.get(onA.sessionId)).toEqual(ackedBy(onA, 0));
    expect(windowResults.get(onB.sessionId)).toEqual(ackedBy(onB, 0));
    for (const client of [onC1, onC2]) {
      // Absent only if the machine was so slow that the reap came first.
      const result = windowResults.get(client.sessionId);
      if (result !== undefined) {
        expect(result).toMatchObject({ status: FAILED, nodeId: c!.nodeId });
        expect(result.error).toContain(`node ${c!.nodeId}`);
      }
    }
    if (windowResults.size === 4) expect(windowMs).toBeLessThan(ACK_TIMEOUT_MS);

    const expected: Row[] = [
      [DISCONNECTED, 'u-1', onC1.sessionId, 'node_lost', -1],
      [DISCONNECTED, 'u-1', onC2.sessionId, 'node_lost', -1],
      [DISCONNECTED, 'u-2', onlyOnC.sessionId, 'node_lost', 0],
      [OFFLINE, 'u-2', onlyOnC.sessionId, 'node_lost', 0],
    ];
    for (const watcher of watchers) {
      await waitFor(
        `watcher on ${watcher.node} to see node_lost for every session of the killed node`,
        () => watcher.live.length >= expected.length,
        {
          timeoutMs: 5000,
        },
      );
    }
    const firstSeen = Math.min(...watchers.map((w) => w.live[0]!.receivedAtMs));
    measured('SIGKILL → first node_lost event on a watcher', firstSeen - killedAt);
    measured('SIGKILL → reaper stamped node_lost (event time)', watchers[0]!.live[0]!.atMs - killedAt);
    // Both survivors kept reaping meanwhile: a duplicate would arrive within a few intervals.
    await sleep(4 * REAP_INTERVAL_MS);

    for (const watcher of watchers) {
      // u-1 goes from 4 sessions to 3 and 2, in whichever order the two were reaped.
      const u1Counts = watcher.live.filter((e) => e.userId === 'u-1').map((e) => e.sessionCount);
      expect(u1Counts).toEqual([3, 2]);
      const normalized = watcher.live.map((e) => (e.userId === 'u-1' ? { ...e, sessionCount: -1 } : e));
      expect(sortedRows(normalized), `events on the watcher on ${watcher.node}`).toEqual(sortedRows(expected.map(toSeen)));
      expect(byUser(watcher.live).get('u-2')).toEqual(expected.slice(2));
      expect(watcher.live.every((e) => e.nodeId === c!.nodeId)).toBe(true);
    }
    expect(cSessions.every((id) => watchers[1]!.live.some((e) => e.sessionId === id))).toBe(true);
    const reapedLines = [a!, b!].flatMap((node) =>
      node.logLines().filter((line) => line.msg === 'reaped the sessions of a node whose lease lapsed'),
    );
    expect(reapedLines.reduce((sum, line) => sum + (line.sessions as number), 0)).toBe(3);

    for (const [n, node] of [
      [1, a!],
      [2, b!],
    ] as const) {
      const response = await node.client.pushToUser({ userId: 'u-1', event: 'notice', data: { n } });
      expect(outcomes(response)).toEqual(
        new Map([
          [onA.sessionId, ackedBy(onA, n)],
          [onB.sessionId, ackedBy(onB, n)],
        ]),
      );
    }
    expect((await a!.client.pushToUser({ userId: 'u-2', event: 'notice', data: { n: 3 } })).deliveries).toEqual([]);
    expect(onA.received).toEqual([0, 1, 2]);
    expect(onC1.received).toEqual([]);
  }, 40_000);

  it('fails the sessions of a SIGSTOPped node by ack timeout + reply grace, naming it, and serves it again after SIGCONT', async () => {
    // A long lease: the node stays stopped for more than a push's wait, and must not be reaped.
    const lease = 6000;
    const [a, b, c] = await startCluster(['s-a', 's-b', 's-c'], { ...PATIENT_PINGS, PUSHGATE_NODE_LEASE_MS: String(lease) });
    const onA = await connect(a!, 'u-1', 'app');
    const onB = await connect(b!, 'u-1', 'pc');
    const onC = await connect(c!, 'u-1', 'web');
    await waitFor('every session to be listed', async () => (await listed(a!, 'u-1')).length === 3);
    const watcher = await watch(a!, ['u-1']);

    const stoppedAt = Date.now();
    c!.signal('SIGSTOP');
    const response = await a!.client.pushToUser({ userId: 'u-1', event: 'notice', data: { n: 1 } });
    const pushMs = Date.now() - stoppedAt;
    measured('PushToUser with one node stopped (ack timeout 1000 + grace 300)', pushMs);
    expect(pushMs).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS + REPLY_GRACE_MS - 50);
    expect(pushMs).toBeLessThanOrEqual(ACK_TIMEOUT_MS + REPLY_GRACE_MS + MARGIN_MS);
    const results = outcomes(response);
    expect(results.get(onA.sessionId)).toEqual(ackedBy(onA, 1));
    expect(results.get(onB.sessionId)).toEqual(ackedBy(onB, 1));
    expect(results.get(onC.sessionId)).toMatchObject({ status: FAILED, nodeId: c!.nodeId });
    expect(results.get(onC.sessionId)!.error).toContain(`node ${c!.nodeId}`);
    expect(response.acked).toBe(2);
    expect(response.failed).toBe(1);

    const continuedAt = Date.now();
    c!.signal('SIGCONT');
    measured('time the node was stopped (lease 6000)', continuedAt - stoppedAt);
    expect(continuedAt - stoppedAt).toBeLessThan(lease - lease / 3 - 500);

    const again = await b!.client.pushToUser({ userId: 'u-1', event: 'notice', data: { n: 2 } });
    expect(outcomes(again)).toEqual(new Map([onA, onB, onC].map((client) => [client.sessionId, ackedBy(client, 2)])));
    expect(onC.disconnectReason).toBeUndefined();
    // Never reaped: still listed, and no presence event at all.
    expect((await listed(b!, 'u-1')).sort()).toEqual([onA, onB, onC].map((cl) => [cl.sessionId, cl.nodeId]).sort());
    expect(rows(watcher.live)).toEqual([]);
  }, 40_000);

  it('does not hand a stopped node the push it reported FAILED once the node runs again', async () => {
    const [a, c] = await startCluster(['f-a', 'f-c'], { ...PATIENT_PINGS, PUSHGATE_NODE_LEASE_MS: '6000' });
    const onC = await connect(c!, 'u-1', 'web');
    await waitFor('the session to be listed', async () => (await listed(a!, 'u-1')).length === 1);

    c!.signal('SIGSTOP');
    const response = await a!.client.pushToUser({ userId: 'u-1', event: 'notice', data: { n: 1 } });
    expect(response.deliveries.map((d) => d.status)).toEqual([FAILED]);
    c!.signal('SIGCONT');

    // A later push that the node answers proves it has read everything sent to it before.
    const later = await a!.client.pushToUser({ userId: 'u-1', event: 'notice', data: { n: 2 } });
    expect(later.deliveries.map((d) => d.status)).toEqual([ACKED]);
    // The caller was told the first push could not be handed to the session (FAILED); delivering
    // it now, unasked, makes a caller that retries a FAILED push deliver it twice.
    expect(onC.received).toEqual([2]);
  }, 40_000);

  it('reaps a node stopped past its lease (node_lost), and after SIGCONT it syncs its live sessions back, announced', async () => {
    const [a, b, c] = await startCluster(['l-a', 'l-b', 'l-c'], PATIENT_PINGS);
    const onA = await connect(a!, 'u-1', 'app');
    const onC = await connect(c!, 'u-1', 'web');
    const onlyOnC = await connect(c!, 'u-2', 'pc');
    await waitFor(
      'every session to be listed',
      async () => (await listed(a!, 'u-1')).length === 2 && (await listed(a!, 'u-2')).length === 1,
    );
    const watchers = [await watch(a!, ['u-1', 'u-2']), await watch(b!, ['u-1', 'u-2'])];

    const stoppedAt = Date.now();
    c!.signal('SIGSTOP');
    const lost: Row[] = [
      [DISCONNECTED, 'u-1', onC.sessionId, 'node_lost', 1],
      [DISCONNECTED, 'u-2', onlyOnC.sessionId, 'node_lost', 0],
      [OFFLINE, 'u-2', onlyOnC.sessionId, 'node_lost', 0],
    ];
    for (const watcher of watchers) {
      await waitFor(`watcher on ${watcher.node} to see the stopped node's sessions reaped`, () => watcher.live.length >= lost.length, {
        timeoutMs: LEASE_MS + REAP_INTERVAL_MS + 10_000,
      });
    }
    measured('SIGSTOP → node_lost seen', Math.max(...watchers.map((w) => w.live[lost.length - 1]!.receivedAtMs)) - stoppedAt);
    expect(await listed(a!, 'u-2')).toEqual([]);
    expect(await listed(b!, 'u-1')).toEqual([[onA.sessionId, a!.nodeId]]);
    // While it is away, a push is not held up by the stopped node: its sessions are no longer listed.
    const meanwhile = await b!.client.pushToUser({ userId: 'u-1', event: 'notice', data: { n: 1 } });
    expect(outcomes(meanwhile)).toEqual(new Map([[onA.sessionId, ackedBy(onA, 1)]]));
    // No duplicate from the second reaper.
    await sleep(3 * REAP_INTERVAL_MS);
    for (const watcher of watchers) expect(sortedRows(watcher.live)).toEqual(sortedRows(lost.map(toSeen)));

    const continuedAt = Date.now();
    measured('time the node was stopped (lease 1500)', continuedAt - stoppedAt);
    c!.signal('SIGCONT');
    const backAt = await waitFor(
      "the resumed node's sessions to be listed again",
      async () => {
        const u1 = await listed(a!, 'u-1');
        const u2 = await listed(a!, 'u-2');
        return u1.length === 2 && u2.length === 1 ? Date.now() : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 20 },
    );
    measured('SIGCONT → sessions listed again', backAt - continuedAt);
    await waitFor('the resumed node to report itself healthy', async () => (await fetch(`${c!.httpUrl}/healthz`)).status === 200);
    expect((await listed(b!, 'u-1')).sort()).toEqual(
      [
        [onA.sessionId, a!.nodeId],
        [onC.sessionId, c!.nodeId],
      ].sort(),
    );
    expect(await listed(b!, 'u-2')).toEqual([[onlyOnC.sessionId, c!.nodeId]]);
    expect(onC.disconnectReason).toBeUndefined();
    expect(onlyOnC.disconnectReason).toBeUndefined();

    const returned: Row[] = [
      [CONNECTED, 'u-1', onC.sessionId, '', 2],
      [ONLINE, 'u-2', onlyOnC.sessionId, '', 1],
      [CONNECTED, 'u-2', onlyOnC.sessionId, '', 1],
    ];
    for (const watcher of watchers) {
      await waitFor(`watcher on ${watcher.node} to see the sessions return`, () => watcher.live.length >= lost.length + returned.length);
    }
    await sleep(3 * REAP_INTERVAL_MS);
    for (const watcher of watchers) {
      const back = watcher.live.slice(lost.length);
      expect(sortedRows(back), `returns seen on ${watcher.node}`).toEqual(sortedRows(returned.map(toSeen)));
      expect(byUser(back).get('u-2')).toEqual(returned.slice(1));
    }
    const synced = c!.logLines().find((line) => line.msg === 'synced this node’s sessions into Redis');
    expect(synced).toMatchObject({ restored: 2, leaseLost: true });

    const after = await a!.client.pushToUser({ userId: 'u-1', event: 'notice', data: { n: 2 } });
    expect(outcomes(after)).toEqual(
      new Map([
        [onA.sessionId, ackedBy(onA, 2)],
        [onC.sessionId, ackedBy(onC, 2)],
      ]),
    );
    const toU2 = await b!.client.pushToUser({ userId: 'u-2', event: 'notice', data: { n: 3 } });
    expect(outcomes(toU2)).toEqual(new Map([[onlyOnC.sessionId, ackedBy(onlyOnC, 3)]]));
  }, 40_000);

  it('keeps the live sessions of a node that resumed while a reaper was already reaping it', async () => {
    // The reaper reaches Redis through a relay that holds its connection once it starts reaping
    // (its SMEMBERS of the lapsed node's set), so the node can resume and renew its lease in between,
    // as it can in the few round trips a real reap of a large node takes. The reaper's lease and
    // command timeout are long enough that holding it for a moment costs it nothing.
    const relay = await startHoldingRelay(redis.port);
    cleanups.push(() => relay.close());
    const [reaper, resumed] = (await startCluster(['r-a', 'r-c'], PATIENT_PINGS, {
      'r-a': { REDIS_URL: relay.url, PUSHGATE_NODE_LEASE_MS: '8000', PUSHGATE_REDIS_COMMAND_TIMEOUT_MS: '4000' },
    })) as [NodeProcess, NodeProcess];
    const onA = await connect(reaper, 'u-1', 'app');
    const onC = await connect(resumed, 'u-1', 'web');
    await waitFor('both sessions to be listed', async () => (await listed(reaper, 'u-1')).length === 2);
    const leases = redis.client();
    cleanups.push(() => leases.disconnect());
    const watcher = await watch(reaper, ['u-1']);

    const caught = relay.holdWhenSent(`{s0}:node:${resumed.nodeId}`);
    resumed.signal('SIGSTOP');
    await waitFor('the reaper to start reaping the stopped node', () => caught.held, { timeoutMs: LEASE_MS + REAP_INTERVAL_MS + 5000 });
    resumed.signal('SIGCONT');
    await waitFor(
      'the resumed node to renew its lease',
      async () => Number(await leases.zscore(`${prefix}{nodes}:leases`, resumed.nodeId)) > Date.now(),
    );
    caught.release();
    const releasedAt = Date.now();
    // The reaper goes on (in a few milliseconds): it removes the session, or, knowing better, does not.
    await waitFor('the reaper to finish', () => watcher.live.some((e) => e.sessionId === onC.sessionId) || Date.now() - releasedAt > 1500);
    measured("held reap released → node_lost of the resumed node's session", (watcher.live[0]?.receivedAtMs ?? NaN) - releasedAt);

    // Whatever the reaper did, the node holds a live session: within a few lease renewals it must be
    // listed again and reachable.
    const deadline = Date.now() + 3 * LEASE_MS;
    let sessions: [string, string][] = [];
    while (Date.now() < deadline) {
      sessions = await listed(reaper, 'u-1');
      if (sessions.length === 2) break;
      await sleep(50);
    }
    expect(onC.disconnectReason).toBeUndefined();
    expect(sessions.sort(), "the resumed node's connected session is missing from the registry").toEqual(
      [
        [onA.sessionId, reaper.nodeId],
        [onC.sessionId, resumed.nodeId],
      ].sort(),
    );
    const response = await reaper.client.pushToUser({ userId: 'u-1', event: 'notice', data: { n: 1 } });
    expect(outcomes(response)).toEqual(
      new Map([
        [onA.sessionId, ackedBy(onA, 1)],
        [onC.sessionId, ackedBy(onC, 1)],
      ]),
    );
  }, 40_000);

  it('exits non-zero at once, naming REDIS_URL, when Redis is not there or does not answer', async () => {
    const deadPort = await freePort();
    // Accepts connections and never answers, like a Redis host that hangs.
    const silent = createServer((socket: TcpSocket) => socket.on('error', () => {}));
    const held: TcpSocket[] = [];
    silent.on('connection', (socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => closeServer(silent, held));
    const silentPort = (silent.address() as AddressInfo).port;

    const startedAt = Date.now();
    const dead = spawnNode({ REDIS_URL: `redis://127.0.0.1:${deadPort}`, PUSHGATE_NODE_ID: 'nr-1' });
    const hung = spawnNode({
      REDIS_URL: `redis://127.0.0.1:${silentPort}`,
      PUSHGATE_NODE_ID: 'nr-2',
      PUSHGATE_REDIS_COMMAND_TIMEOUT_MS: '500',
    });
    const [deadExit, hungExit] = await Promise.all([dead.waitForExit(15_000), hung.waitForExit(15_000)]);
    measured('REDIS_URL at a closed port / a silent port → both exited', Date.now() - startedAt);

    for (const [proc, exit, port] of [
      [dead, deadExit, deadPort],
      [hung, hungExit, silentPort],
    ] as const) {
      expect(exit.code, proc.stderr).not.toBe(0);
      expect(exit.code, proc.stderr).not.toBeNull();
      expect(proc.stderr).toContain('REDIS_URL');
      expect(proc.stderr).toContain(`127.0.0.1:${port}`);
      expect(proc.stderr).not.toMatch(/\n\s+at /);
      expect(proc.stdout).not.toContain('pushgate started');
    }
    // Startup itself (compiling with tsx) takes a second or two; the connect wait is bounded by
    // max(2 × command timeout, 3 s).
    expect(Date.now() - startedAt).toBeLessThan(12_000);
  }, 30_000);

  it('on SIGTERM a cluster node leaves cleanly: server_shutdown for its sessions, lease given up, exit 0, no node_lost after', async () => {
    const [a, b] = await startCluster(['g-a', 'g-b']);
    const onA = await connect(a!, 'u-1', 'app');
    const onB = await connect(b!, 'u-1', 'web');
    const onlyOnB = await connect(b!, 'u-2', 'pc');
    const notices: string[] = [];
    for (const client of [onB, onlyOnB]) client.socket.on('pushgate:disconnect', ({ reason }: { reason: string }) => notices.push(reason));
    await waitFor(
      'every session to be listed',
      async () => (await listed(a!, 'u-1')).length === 2 && (await listed(a!, 'u-2')).length === 1,
    );
    const watcher = await watch(a!, ['u-1', 'u-2']);
    const leases = redis.client();
    cleanups.push(() => leases.disconnect());
    expect((await leases.zrange(`${prefix}{nodes}:leases`, '0', '-1')).sort()).toEqual(['g-a', 'g-b']);

    const signalledAt = Date.now();
    expect(await b!.terminate(10_000)).toEqual({ code: 0, signal: null });
    measured('SIGTERM → exit', Date.now() - signalledAt);
    expect(notices).toEqual(['server_shutdown', 'server_shutdown']);
    expect(await leases.zrange(`${prefix}{nodes}:leases`, '0', '-1')).toEqual(['g-a']);
    expect(await leases.zscore(`${prefix}{nodes}:leases`, 'g-b')).toBeNull();

    const shutdown: Row[] = [
      [DISCONNECTED, 'u-1', onB.sessionId, 'server_shutdown', 1],
      [DISCONNECTED, 'u-2', onlyOnB.sessionId, 'server_shutdown', 0],
      [OFFLINE, 'u-2', onlyOnB.sessionId, 'server_shutdown', 0],
    ];
    await waitFor('the watcher on the other node to see the sessions leave', () => watcher.live.length >= shutdown.length);
    expect(await listed(a!, 'u-1')).toEqual([[onA.sessionId, a!.nodeId]]);
    expect(await listed(a!, 'u-2')).toEqual([]);
    // Long enough for the lease to have lapsed and been reaped, had it been left behind.
    await sleep(LEASE_MS + 3 * REAP_INTERVAL_MS);
    expect(sortedRows(watcher.live)).toEqual(sortedRows(shutdown.map(toSeen)));
    expect(byUser(watcher.live).get('u-2')).toEqual(shutdown.slice(1));
    expect(a!.logLines().filter((line) => line.msg === 'reaped the sessions of a node whose lease lapsed')).toEqual([]);
    // Leaving on purpose is not trouble: nothing at warn level about Redis or the lease.
    expect(b!.logLines().filter((line) => (line.level as number) >= 40)).toEqual([]);
  }, 40_000);

  it('a node that cannot bind its gRPC port exits non-zero, gives its lease back, and logs only JSON', async () => {
    testNumber++;
    prefix = `t${testNumber}:`;
    const taken: TcpServer = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => closeServer(taken, []));
    const node = spawnNode({
      REDIS_URL: redis.url,
      PUSHGATE_REDIS_PREFIX: prefix,
      PUSHGATE_NODE_ID: 'busy-port',
      PUSHGATE_GRPC_PORT: String((taken.address() as AddressInfo).port),
    });
    const exit = await node.waitForExit(15_000);

    expect(exit.code, node.stderr).toBe(1);
    expect(node.stderr).toMatch(
      /^pushgate: failed to start: cannot serve gRPC on 127\.0\.0\.1:\d+ \(PUSHGATE_GRPC_HOST, PUSHGATE_GRPC_PORT\)/,
    );
    // grpc-js's own diagnostics ("E No address added…") go through the JSON log, not stderr.
    expect(node.stderr.trim().split('\n')).toHaveLength(1);
    for (const line of node.stdout.trim().split('\n')) expect(() => JSON.parse(line), line).not.toThrow();
    const leases = redis.client();
    cleanups.push(() => leases.disconnect());
    expect(await leases.zscore(`${prefix}{nodes}:leases`, 'busy-port')).toBeNull();
  }, 30_000);
});

function toSeen([kind, userId, sessionId, reason, sessionCount]: Row): Seen {
  return { kind, userId, sessionId, nodeId: undefined, reason, sessionCount, atMs: 0, receivedAtMs: 0 };
}

async function freePort(): Promise<number> {
  const probe: TcpServer = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function closeServer(server: TcpServer, sockets: TcpSocket[]): Promise<void> {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
}

interface HoldingRelay {
  /** redis://127.0.0.1:<relay port> */
  readonly url: string;
  /**
   * From now on, the first connection that sends bytes containing `pattern` is held: those bytes
   * and everything after them stay in the relay until `release()`. Other connections pass freely.
   */
  holdWhenSent(pattern: string): { readonly held: boolean; release(): void };
  close(): Promise<void>;
}

/** A TCP relay to a Redis port that can hold one connection's traffic to Redis on a pattern. */
async function startHoldingRelay(redisPort: number): Promise<HoldingRelay> {
  const sockets: TcpSocket[] = [];
  let trap: { pattern: string; held: boolean; release: () => void; onRelease: (() => void)[] } | undefined;
  const server = createServer((client) => {
    const upstream = connectTcp(redisPort, '127.0.0.1');
    sockets.push(client, upstream);
    let holding: Buffer[] | undefined;
    client.on('data', (chunk: Buffer) => {
      if (holding !== undefined) {
        holding.push(chunk);
        return;
      }
      const armed = trap;
      if (armed !== undefined && !armed.held && chunk.toString('latin1').includes(armed.pattern)) {
        armed.held = true;
        const buffered = [chunk];
        holding = buffered;
        armed.onRelease.push(() => {
          holding = undefined;
          for (const part of buffered) upstream.write(part);
        });
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    holdWhenSent(pattern) {
      const armed = {
        pattern,
        held: false,
        onRelease: [] as (() => void)[],
        release() {
          trap = undefined;
          for (const release of armed.onRelease.splice(0)) release();
        },
      };
      trap = armed;
      return armed;
    },
    close: () => closeServer(server, sockets),
  };
}
