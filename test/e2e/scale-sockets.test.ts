import { performance } from 'node:perf_hooks';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PresenceEventKind } from '../../src/gen/pushgate/v1/presence.js';
import { DeliveryStatus, WatchPresenceRequest, type WatchPresenceResponse } from '../../src/gen/pushgate/v1/push_service.js';
import { type NodeProcess, startNodeProcess, stopAllNodes } from '../support/node-process.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { signToken } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

// ~10,000 real sockets on one node in cluster mode, every session in Redis's one default shard:
// the size at which the old layout broke (a whole-shard snapshot unpacked every session id at once
// and failed near 8,000). The node runs in its own process: this one holds the clients, and one
// process cannot hold both sides under the 20,000 open-file limit.

const USERS = 2000;
const SESSIONS_PER_USER = 5;
const TOTAL = USERS * SESSIONS_PER_USER;
const IN_FLIGHT = 200;
/** Client sockets spread over several loopback source addresses, far from any one's port range. */
const SOURCE_ADDRESSES = 8;

let redis: TestRedis;
let node: NodeProcess;
const sockets: Socket[] = [];

beforeAll(async () => {
  redis = await startRedis();
  node = await startNodeProcess({
    REDIS_URL: redis.url,
    PUSHGATE_REDIS_SHARDS: '1',
    // Nothing here is about liveness: no ping must give up while 10,000 clients share two cores.
    PUSHGATE_PING_INTERVAL_MS: '60000',
    PUSHGATE_PING_TIMEOUT_MS: '60000',
    PUSHGATE_REDIS_COMMAND_TIMEOUT_MS: '5000',
    // 10,000 sessions leaving within seconds append ~12,000 presence events to the one shard: more
    // than the default retention (10,000), so a watcher that falls behind during the close is cut
    // off with RESOURCE_EXHAUSTED, as designed. Size the retention for such bursts, as here.
    PUSHGATE_PRESENCE_RETENTION: '100000',
  });
}, 60_000);

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await stopAllNodes();
  await redis?.stop();
}, 60_000);

function connect(userId: string, token: string, n: number): Promise<Socket> {
  const socket = io(node.httpUrl, {
    auth: { token, clientType: 'web' },
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    localAddress: `127.0.0.${2 + (n % SOURCE_ADDRESSES)}`,
  } as Parameters<typeof io>[1]);
  socket.on('notice', (_data: unknown, ack: (reply: unknown) => void) => ack({ userId }));
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

/** Sessions in a whole-registry WatchPresence snapshot, and how long the snapshot took to stream. */
async function snapshotCount(): Promise<{ sessions: number; ms: number }> {
  const started = performance.now();
  const stream = node.client.raw.watchPresence(WatchPresenceRequest.fromPartial({ includeSnapshot: true }));
  let sessions = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      stream.on('data', ({ event }: WatchPresenceResponse) => {
        if (event?.kind === PresenceEventKind.PRESENCE_EVENT_KIND_SNAPSHOT_COMPLETE) resolve();
        else sessions++;
      });
      stream.on('error', reject);
    });
  } finally {
    stream.cancel();
  }
  return { sessions, ms: performance.now() - started };
}

describe(`${TOTAL} real sockets in one Redis shard`, () => {
  it('connects them all, lists, snapshots and pushes to them, and is empty again once they leave', async () => {
    const tokens = await Promise.all(Array.from({ length: USERS }, (_, u) => signToken(`scale-${u}`)));
    const connectStarted = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        for (let n = next++; n < TOTAL; n = next++) {
          const user = n % USERS;
          await connect(`scale-${user}`, tokens[user]!, n);
        }
      }),
    );
    const connectMs = performance.now() - connectStarted;

    await waitFor('every session to be listed', async () => {
      const { sessions } = await node.client.listSessions({ userId: `scale-${USERS - 1}` });
      return sessions.length === SESSIONS_PER_USER;
    });
    const snapshot = await snapshotCount();
    expect(snapshot.sessions).toBe(TOTAL);

    const pushLatencies: number[] = [];
    for (let u = 0; u < 50; u++) {
      const started = performance.now();
      const result = await node.client.pushToUser({ userId: `scale-${u * 37}`, event: 'notice', data: { u } });
      pushLatencies.push(performance.now() - started);
      expect(result.deliveries).toHaveLength(SESSIONS_PER_USER);
      expect(result.deliveries.every((d) => d.status === DeliveryStatus.DELIVERY_STATUS_ACKED)).toBe(true);
    }
    pushLatencies.sort((a, b) => a - b);

    const closeStarted = performance.now();
    for (const socket of sockets.splice(0)) socket.close();
    await waitFor('the registry to empty', async () => (await snapshotCount()).sessions === 0, { timeoutMs: 60_000, intervalMs: 250 });
    const closeMs = performance.now() - closeStarted;

    console.log(
      [
        `${TOTAL} sockets, one shard, node in its own process:`,
        `  connect          ${(connectMs / 1000).toFixed(1)} s (${Math.round(TOTAL / (connectMs / 1000))}/s, ${IN_FLIGHT} in flight)`,
        `  full snapshot    ${snapshot.ms.toFixed(0)} ms streamed over WatchPresence`,
        `  push to 5        p50 ${pushLatencies[25]!.toFixed(1)} ms, max ${pushLatencies[49]!.toFixed(1)} ms (one at a time)`,
        `  close all        ${(closeMs / 1000).toFixed(1)} s until the registry was empty`,
      ].join('\n'),
    );
  }, 180_000);
});
