import { performance } from 'node:perf_hooks';
import { type ServiceError, status } from '@grpc/grpc-js';
import type { Socket } from 'socket.io-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../src/domain/session.js';
import { DeliveryStatus } from '../../src/gen/pushgate/v1/push_service.js';
import { startNode, type TestNode } from '../support/node.js';
import { pushToUsers } from '../support/push-to-users.js';
import { waitFor } from '../support/wait.js';

const { DELIVERY_STATUS_ACKED: ACKED, DELIVERY_STATUS_TIMEOUT: TIMEOUT, DELIVERY_STATUS_DISCONNECTED: GONE } = DeliveryStatus;

type Ack = (...reply: unknown[]) => void;

/** Acks every `notice` (after `delayMs`), recording the data each client got. */
function acking(socket: Socket, received: unknown[], delayMs = 0): void {
  socket.on('notice', (data: unknown, ack: Ack) => {
    received.push(data);
    setTimeout(() => ack({ by: socket.id }), delayMs);
  });
}

async function streamError(done: Promise<unknown>): Promise<ServiceError> {
  try {
    await done;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('expected the stream to fail, but it ended OK');
}

describe('PushToUsers', () => {
  let node: TestNode;
  beforeEach(async () => {
    node = await startNode({ PUSHGATE_MAX_BATCH_USERS: '2000' });
  });
  afterEach(async () => {
    await node.stop();
  });

  it('streams each user’s result as it completes (no-session user first, silent one last), then the summary', async () => {
    const layout: Record<string, string[]> = { u1: ['app', 'web'], u2: ['app', 'pc', 'web'], u3: ['pc', 'web'] };
    const received: unknown[] = [];
    const sessions = new Map<string, string[]>();
    for (const [userId, types] of Object.entries(layout)) {
      const sockets = await Promise.all(types.map((type) => node.connect(userId, type)));
      for (const [i, socket] of sockets.entries()) acking(socket, received, 20 * i);
      sessions.set(
        userId,
        sockets.map((s) => s.id!),
      );
    }
    const silent = await node.connect('silent', 'web');
    const silentGot: unknown[] = [];
    silent.on('notice', (data: unknown) => silentGot.push(data));

    const batch = pushToUsers(node.client.raw, {
      userIds: ['silent', 'u1', 'nobody', 'u2', 'u3', 'u1'],
      event: 'notice',
      data: { incident: 42 },
      ackTimeoutMs: 1500,
      messageId: 'inc-42',
    });
    const { summary, afterSummary } = await batch.done;

    const order = batch.results.map((r) => r.result.userId);
    expect(order).toHaveLength(5);
    expect(order[0]).toBe('nobody');
    expect(order.at(-1)).toBe('silent');
    expect(new Set(order)).toEqual(new Set(['silent', 'u1', 'nobody', 'u2', 'u3']));
    // Early results are early: the acking users came long before the silent one's ack timeout.
    for (const { result, atMs } of batch.results) {
      expect(result.messageId).toBe(`inc-42:${result.userId}`);
      if (result.userId !== 'silent') expect(atMs).toBeLessThan(1000);
      else expect(atMs).toBeGreaterThanOrEqual(1400);
    }
    for (const [userId, ids] of sessions) {
      const result = batch.results.find((r) => r.result.userId === userId)!.result;
      expect(result.deliveries.map((d) => d.session!.sessionId).sort()).toEqual([...ids].sort());
      expect(result.deliveries.every((d) => d.status === ACKED && d.session!.userId === userId)).toBe(true);
      expect(result.deliveries.map((d) => d.ackData)).toEqual(result.deliveries.map((d) => ({ by: d.session!.sessionId })));
      expect([result.acked, result.timedOut, result.failed]).toEqual([ids.length, 0, 0]);
    }
    const silentResult = batch.results.at(-1)!.result;
    expect(silentResult.deliveries.map((d) => [d.session!.sessionId, d.status])).toEqual([[silent.id, TIMEOUT]]);
    expect([silentResult.acked, silentResult.timedOut]).toEqual([0, 1]);
    expect(batch.results[0]!.result.deliveries).toEqual([]);

    expect(summary).toEqual({
      messageId: 'inc-42',
      users: 5,
      usersWithoutSessions: 1,
      sessions: 8,
      acked: 7,
      timedOut: 1,
      failed: 0,
      sent: 0,
      stored: 0,
    });
    expect(afterSummary).toBe(0);
    // Each session got the event once (u1 was named twice).
    expect(received).toEqual(Array(7).fill({ incident: 42 }));
    expect(silentGot).toEqual([{ incident: 42 }]);
    expect(node.app.local.pendingWaits()).toBe(0);
  });

  it('generates a batch message id when none is given, and derives each user’s from it', async () => {
    const batch = pushToUsers(node.client.raw, { userIds: ['a', 'b'], event: 'notice', noAck: true });
    const { summary } = await batch.done;
    expect(summary!.messageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(batch.results.map((r) => r.result.messageId).sort()).toEqual([`${summary!.messageId}:a`, `${summary!.messageId}:b`]);
    expect(summary!.usersWithoutSessions).toBe(2);
  });

  it('refuses bad requests with INVALID_ARGUMENT naming the field', async () => {
    const refused = async (request: Parameters<typeof pushToUsers>[1]): Promise<string> => {
      const err = await streamError(pushToUsers(node.client.raw, { event: 'notice', ...request }).done);
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      return err.details;
    };
    expect(await refused({ userIds: [] })).toMatch(/^user_ids is required/);
    expect(await refused({ userIds: ['a', 'b', ''] })).toBe('user_ids[2] is required');
    expect(await refused({ userIds: ['a', 'x'.repeat(257)] })).toMatch(/^user_ids\[1\] must be at most 256 characters/);
    expect(await refused({ userIds: ['a'], event: 'connect' })).toMatch(/^event "connect" is reserved/);
    expect(await refused({ userIds: ['a'], event: '' })).toBe('event is required');
    expect(await refused({ userIds: ['a'], ackTimeoutMs: 10_000_000 })).toMatch(/^ack_timeout_ms must be at most/);
    expect(await refused({ userIds: ['a'], clientTypes: ['toaster'] })).toMatch(/^client_types\[0\] "toaster" is not a known client type/);

    const small = await startNode({ PUSHGATE_MAX_BATCH_USERS: '3' });
    try {
      const err = await streamError(pushToUsers(small.client.raw, { userIds: ['a', 'b', 'c', 'd'], event: 'notice' }).done);
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(/^user_ids names 4 users, more than the 3 .*PUSHGATE_MAX_BATCH_USERS/);
      const ok = await pushToUsers(small.client.raw, { userIds: ['a', 'b', 'c'], event: 'notice' }).done;
      expect(ok.summary!.users).toBe(3);
    } finally {
      await small.stop();
    }
  });

  it('a cancelled stream leaves no pending ack and no call in flight', async () => {
    const fast = await node.connect('fast', 'web');
    fast.on('notice', (_data: unknown, ack: Ack) => ack());
    const slow = await node.connect('slow', 'web');
    slow.on('notice', () => undefined);

    const batch = pushToUsers(node.client.raw, { userIds: ['fast', 'slow'], event: 'notice', ackTimeoutMs: 20_000 });
    await waitFor('the fast user’s result', () => batch.results.length === 1);
    expect(node.app.local.pendingWaits()).toBe(1);
    expect(node.app.callsInFlight).toBe(1);
    const cancelledAt = performance.now();
    batch.call.cancel();
    expect((await streamError(batch.done)).code).toBe(status.CANCELLED);
    await waitFor('the ack wait to end', () => node.app.local.pendingWaits() === 0 && node.app.callsInFlight === 0);
    expect(performance.now() - cancelledAt).toBeLessThan(2000);
  });

  it('ends with DEADLINE_EXCEEDED at the caller’s deadline, leaving nothing behind', async () => {
    const slow = await node.connect('slow', 'web');
    slow.on('notice', () => undefined);
    const batch = pushToUsers(
      node.client.raw,
      { userIds: ['slow'], event: 'notice', ackTimeoutMs: 20_000 },
      { deadline: Date.now() + 300 },
    );
    expect((await streamError(batch.done)).code).toBe(status.DEADLINE_EXCEEDED);
    await waitFor('the ack wait to end', () => node.app.local.pendingWaits() === 0 && node.app.callsInFlight === 0);
  });

  it('a drain waits for a batch in flight to finish', async () => {
    const late = await node.connect('late', 'web');
    let got = false;
    late.on('notice', (_data: unknown, ack: Ack) => {
      got = true;
      setTimeout(() => ack('late'), 500);
    });
    const batch = pushToUsers(node.client.raw, { userIds: ['late', 'nobody'], event: 'notice', ackTimeoutMs: 5000 });
    await waitFor('the client to get the event', () => got);
    const stopped = node.app.stop();
    const { summary } = await batch.done;
    expect(summary).toMatchObject({ users: 2, acked: 1, usersWithoutSessions: 1 });
    expect(batch.results.find((r) => r.result.userId === 'late')!.result.deliveries[0]!.ackData).toBe('late');
    await stopped;
  });

  it('measures a 1,000-user batch against 1,000 sequential PushToUser calls (printed, not asserted)', async () => {
    // One session per user, registered straight into the registry as this node's: no socket holds
    // them, so each delivery is DISCONNECTED at once. This measures the API, lookup and fan-out
    // path per user, not Socket.IO (1,000 real sockets would dominate the test's time).
    const users = Array.from({ length: 1000 }, (_, i) => `bulk-${i}`);
    const now = Date.now();
    const nodeId = node.app.config.server.nodeId;
    await Promise.all(
      users.map((userId) =>
        node.app.registry.register({
          sessionId: `s-${userId}`,
          userId,
          clientType: 'web',
          nodeId,
          connectedAtMs: now,
          lastSeenAtMs: now,
          remoteAddress: '127.0.0.1',
          userAgent: 'bench',
        } satisfies SessionRecord),
      ),
    );
    // Warm both paths once.
    await pushToUsers(node.client.raw, { userIds: users.slice(0, 10), event: 'notice' }).done;
    await node.client.pushToUser({ userId: users[0]!, event: 'notice' });

    const batch = pushToUsers(node.client.raw, { userIds: users, event: 'notice' });
    const { summary, atMs } = await batch.done;
    expect(summary).toMatchObject({ users: 1000, sessions: 1000, failed: 1000 });
    expect(batch.results.every((r) => r.result.deliveries[0]!.status === GONE)).toBe(true);

    const started = performance.now();
    for (const userId of users) await node.client.pushToUser({ userId, event: 'notice' });
    const sequentialMs = performance.now() - started;
    const firstMs = batch.results[0]!.atMs;
    console.log(
      `PushToUsers, 1,000 users × 1 session (registry-only sessions, DISCONNECTED): first result ${firstMs.toFixed(1)} ms, ` +
        `summary ${atMs.toFixed(1)} ms; 1,000 sequential PushToUser: ${sequentialMs.toFixed(1)} ms; ` +
        `sequential / batch = ${(sequentialMs / atMs).toFixed(1)}×`,
    );
  });
});
