import type { Socket } from 'socket.io-client';
import { afterEach, expect, it } from 'vitest';
import { DeliveryStatus } from '../../src/gen/pushgate/v1/push_service.js';
import { heldBytes, MiB } from '../support/memory.js';
import { startNode, type TestNode } from '../support/node.js';
import { DISCONNECTED, eventsOf, presenceStreams } from '../support/presence-watch.js';
import { waitFor } from '../support/wait.js';

/**
 * Finding: a client that keeps its connection open but reads nothing made the node queue every
 * push for it: 10 such sessions and 200 no-ack pushes of 200 KB took a node from 89 MB to 491 MB.
 * Now a connection with more than PUSHGATE_MAX_CLIENT_BUFFER_BYTES (4 MiB) queued fails its push
 * (`slow_consumer`) and is dropped, and the node's memory stays within that bound per session.
 */

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
const { watchLive } = presenceStreams(cleanups);

/** Stops reading the socket, as a stalled or malicious client does: the TCP window fills, the server queues. */
function stopReading(socket: Socket): void {
  const engine = (socket.io as unknown as { engine: { transport: { ws: { _socket: { pause(): void } } } } }).engine;
  engine.transport.ws._socket.pause();
}

const SLOW_SESSIONS = 10;
const PUSHES = 200;
const BLOB = 'x'.repeat(200_000);

it('drops clients that stop reading (slow_consumer), keeps memory bounded, and serves other users meanwhile', async () => {
  const node: TestNode = await startNode(process.env.SLOW_CONSUMER_ENV ? JSON.parse(process.env.SLOW_CONSUMER_ENV) : {});
  cleanups.push(() => node.stop());
  const watch = await watchLive(node, { userIds: ['stalled'] });
  const slow = await Promise.all(Array.from({ length: SLOW_SESSIONS }, () => node.connect('stalled', 'app')));
  const normal = await node.connect('normal', 'web');
  normal.on('note', (_data: unknown, ack: (reply: unknown) => void) => ack({ ok: true }));
  for (const socket of slow) stopReading(socket);
  const before = heldBytes();
  const rssBefore = process.memoryUsage().rss;

  let peakRss = rssBefore;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
  cleanups.push(() => clearInterval(sampler));
  const statuses: { status: DeliveryStatus; error: string }[] = [];
  const normalLatenciesMs: number[] = [];
  let sent = 0;
  const pusher = async (): Promise<void> => {
    while (sent < PUSHES) {
      const n = ++sent;
      const response = await node.client.pushToUser({ userId: 'stalled', event: 'blob', data: { blob: BLOB }, noAck: true });
      statuses.push(...response.deliveries.map((d) => ({ status: d.status, error: d.error })));
      if (n % 20 === 0) {
        const startedAt = performance.now();
        const reply = await node.client.pushToUser({ userId: 'normal', event: 'note', data: { n }, ackTimeoutMs: 2000 });
        normalLatenciesMs.push(performance.now() - startedAt);
        expect(reply.deliveries.map((d) => d.status)).toEqual([DeliveryStatus.DELIVERY_STATUS_ACKED]);
      }
    }
  };
  await Promise.all([pusher(), pusher(), pusher(), pusher()]);
  clearInterval(sampler);

  // Every stalled session was closed as a slow consumer, and presence says so.
  const rows = await eventsOf(watch, 2 * SLOW_SESSIONS + 2, 10_000);
  const disconnects = rows.filter(([kind]) => kind === DISCONNECTED);
  expect(disconnects).toHaveLength(SLOW_SESSIONS);
  expect(new Set(disconnects.map(([, , , reason]) => reason))).toEqual(new Set(['slow_consumer']));
  expect((await node.client.listSessions({ userId: 'stalled' })).sessions).toEqual([]);
  // The pushes that found a stalled session with its queue full failed with the named error.
  const failed = statuses.filter((s) => s.status === DeliveryStatus.DELIVERY_STATUS_FAILED);
  expect(failed.length).toBeGreaterThanOrEqual(SLOW_SESSIONS);
  for (const f of failed) expect(f.error).toMatch(/^slow_consumer: /);
  expect(statuses.filter((s) => s.status === DeliveryStatus.DELIVERY_STATUS_SENT).length).toBeLessThan(SLOW_SESSIONS * PUSHES);

  // Memory: before the limit, the 10 × 200 pushes of 200 KB (400 MB) stayed queued. Now each session
  // holds at most its 4 MiB plus one push while it lives, and nothing once it is dropped.
  await waitFor('the node to let go of every stalled socket', () => node.app.local.size === 1);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const after = heldBytes();
  const grewBy = after - before;
  const peakRssGrowth = peakRss - rssBefore;
  console.log(
    `slow consumers: held memory grew ${(grewBy / MiB).toFixed(1)} MiB after GC; peak RSS +${(peakRssGrowth / MiB).toFixed(0)} MiB; ` +
      `${failed.length} deliveries failed slow_consumer; normal user's push p100 ${Math.max(...normalLatenciesMs).toFixed(0)} ms`,
  );
  expect(grewBy).toBeLessThan(16 * MiB);
  expect(peakRssGrowth).toBeLessThan(SLOW_SESSIONS * 4 * MiB + 200 * MiB);
  // The normal user's pushes were acked promptly throughout.
  expect(normalLatenciesMs).toHaveLength(PUSHES / 20);
  expect(Math.max(...normalLatenciesMs)).toBeLessThan(1000);
});
