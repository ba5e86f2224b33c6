import { status } from '@grpc/grpc-js';
import type { Socket } from 'socket.io-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeliveryMode, RemovalPolicy } from '../../src/gen/pushgate/v1/inbox.js';
import { DeliveryStatus } from '../../src/gen/pushgate/v1/push_service.js';
import { grpcError } from '../support/grpc-client.js';
import { startNode, type TestNode } from '../support/node.js';
import { openClient } from '../support/socket-client.js';
import { signToken } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

/** What a client with metadata saw: each notice's data and meta, in arrival order. */
interface Seen {
  readonly data: unknown;
  readonly meta: { messageId: string; sentAt: number; replay: boolean; attempt: number } | undefined;
  readonly ack: (reply?: unknown) => void;
}

interface Device {
  readonly socket: Socket;
  readonly seen: Seen[];
}

const STORE_IF_UNACKED = DeliveryMode.DELIVERY_MODE_STORE_IF_UNACKED;
const STORE = DeliveryMode.DELIVERY_MODE_STORE;

describe('offline inbox (one node, memory)', () => {
  let node: TestNode;
  const devices: Socket[] = [];

  /**
   * Connects a client whose `notice` handler is in place before the handshake, as a real app's is:
   * replayed messages come right after connect. `autoAck` acks each notice on arrival.
   */
  async function device(userId: string, clientType: string, options: { meta?: boolean; autoAck?: boolean } = {}): Promise<Device> {
    const { meta = true, autoAck = false } = options;
    const socket = openClient(node.httpUrl, { token: await signToken(userId), clientType, meta });
    devices.push(socket);
    const seen: Seen[] = [];
    socket.on('notice', (...args: unknown[]) => {
      const ack = args[args.length - 1] as (reply?: unknown) => void;
      const entry: Seen = { data: args[0], meta: meta ? (args[1] as Seen['meta']) : undefined, ack };
      seen.push(entry);
      if (autoAck) ack({ ok: true });
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    });
    return { socket, seen };
  }

  async function inboxIds(userId: string): Promise<string[]> {
    const { messages } = await node.client.listInbox({ userId });
    return messages.map((m) => m.messageId);
  }

  beforeEach(async () => {
    node = await startNode({ PUSHGATE_INBOX_MAX_MESSAGES: '3' });
  });
  afterEach(async () => {
    for (const socket of devices.splice(0)) socket.close();
    await node.stop();
  });

  it('keeps a push for an offline user and replays it to each client that connects; one ack removes it', async () => {
    const pushed = await node.client.pushToUser({
      userId: 'u1',
      event: 'notice',
      data: { title: 'approve PO-7' },
      messageId: 'po-7',
      deliveryMode: STORE_IF_UNACKED,
    });
    expect(pushed.deliveries).toEqual([]);
    expect(pushed.stored).toBe(true);
    expect(await inboxIds('u1')).toEqual(['po-7']);

    const [phone, desktop] = await Promise.all([device('u1', 'app'), device('u1', 'pc')]);
    await waitFor('both clients got the stored message', () => phone.seen.length === 1 && desktop.seen.length === 1);
    for (const { seen } of [phone, desktop]) {
      expect(seen[0]!.data).toEqual({ title: 'approve PO-7' });
      expect(seen[0]!.meta).toMatchObject({ messageId: 'po-7', replay: true, attempt: expect.any(Number) });
      expect(seen[0]!.meta!.sentAt).toBeGreaterThan(Date.now() - 60_000);
    }
    phone.seen[0]!.ack('read');
    await waitFor('the ack removed it', async () => (await inboxIds('u1')).length === 0);
    // The other client's later ack is a no-op, and a new connection gets nothing.
    desktop.seen[0]!.ack('read too');
    const later = await device('u1', 'web');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(later.seen).toEqual([]);
    expect(await inboxIds('u1')).toEqual([]);
  });

  it('does not keep a STORE_IF_UNACKED push that a live session acked', async () => {
    await device('u2', 'app', { autoAck: true });
    const pushed = await node.client.pushToUser({ userId: 'u2', event: 'notice', data: 1, deliveryMode: STORE_IF_UNACKED });
    expect(pushed.acked).toBe(1);
    expect(pushed.stored).toBe(false);
    expect(await inboxIds('u2')).toEqual([]);
  });

  it('keeps a push whose live session timed out, and replays it on the next connect as attempt 2', async () => {
    const silent = await device('u3', 'app');
    const pushed = await node.client.pushToUser({
      userId: 'u3',
      event: 'notice',
      data: 'x',
      messageId: 'm3',
      ackTimeoutMs: 100,
      deliveryMode: STORE_IF_UNACKED,
    });
    expect(pushed.deliveries.map((d) => d.status)).toEqual([DeliveryStatus.DELIVERY_STATUS_TIMEOUT]);
    expect(pushed.stored).toBe(true);
    expect(silent.seen.map((s) => s.meta)).toEqual([expect.objectContaining({ messageId: 'm3', replay: false, attempt: 1 })]);
    silent.socket.close();
    const back = await device('u3', 'app', { autoAck: true });
    await waitFor('replayed', () => back.seen.length === 1);
    expect(back.seen[0]!.meta).toMatchObject({ messageId: 'm3', replay: true, attempt: 2 });
    await waitFor('removed by the ack', async () => (await inboxIds('u3')).length === 0);
  });

  it('STORE keeps a push until acked, and says whether the live ack removed it', async () => {
    const acking = await device('u4', 'app', { autoAck: true });
    const acked = await node.client.pushToUser({ userId: 'u4', event: 'notice', data: 1, deliveryMode: STORE });
    expect(acked.acked).toBe(1);
    expect(acked.stored).toBe(false);
    acking.socket.close();
    const offline = await node.client.pushToUser({ userId: 'u4', event: 'notice', data: 2, messageId: 'kept', deliveryMode: STORE });
    expect(offline.stored).toBe(true);
    expect(await inboxIds('u4')).toEqual(['kept']);
  });

  it('replays only to the client types the push named', async () => {
    await node.client.pushToUser({ userId: 'u5', event: 'notice', data: 'apps only', clientTypes: ['app'], deliveryMode: STORE });
    const [web, app] = await Promise.all([device('u5', 'web'), device('u5', 'app')]);
    await waitFor('the app got it', () => app.seen.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(web.seen).toEqual([]);
    expect(app.seen[0]!.data).toBe('apps only');
  });

  it('replays in push order, then the live pushes that came meanwhile', async () => {
    for (const n of [1, 2, 3]) {
      await node.client.pushToUser({ userId: 'u6', event: 'notice', data: n, messageId: `s${n}`, deliveryMode: STORE_IF_UNACKED });
    }
    const client = await device('u6', 'app', { autoAck: true });
    const live = node.client.pushToUser({ userId: 'u6', event: 'notice', data: 'live', messageId: 'live' });
    await waitFor('all four arrived', () => client.seen.length === 4);
    expect(client.seen.map((s) => s.data)).toEqual([1, 2, 3, 'live']);
    expect(client.seen.map((s) => s.meta!.replay)).toEqual([true, true, true, false]);
    expect((await live).acked).toBe(1);
  });

  it('removes an EACH_CLIENT_TYPE message only once every named client type acked it', async () => {
    await node.client.pushToUser({
      userId: 'u7',
      event: 'notice',
      data: 'both',
      messageId: 'both',
      clientTypes: ['app', 'pc'],
      deliveryMode: STORE,
      removal: RemovalPolicy.REMOVAL_POLICY_EACH_CLIENT_TYPE,
    });
    const app = await device('u7', 'app', { autoAck: true });
    await waitFor('app got it', () => app.seen.length === 1);
    await waitFor('app ack recorded', async () => {
      const { messages } = await node.client.listInbox({ userId: 'u7' });
      return messages[0]?.ackedClientTypes.join() === 'app';
    });
    const pc = await device('u7', 'pc', { autoAck: true });
    await waitFor('pc got it', () => pc.seen.length === 1);
    await waitFor('removed after both types acked', async () => (await inboxIds('u7')).length === 0);
  });

  it('drops the oldest message from a full inbox (PUSHGATE_INBOX_MAX_MESSAGES 3)', async () => {
    for (const n of [1, 2, 3, 4]) {
      await node.client.pushToUser({ userId: 'u8', event: 'notice', data: n, messageId: `d${n}`, deliveryMode: STORE });
    }
    expect(await inboxIds('u8')).toEqual(['d2', 'd3', 'd4']);
    const metrics = await (await fetch(`${node.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/^pushgate_inbox_dropped_total 1$/m);
  });

  it('lets legacy clients without metadata replay with (data, ack)', async () => {
    await node.client.pushToUser({ userId: 'u9', event: 'notice', data: { legacy: true }, deliveryMode: STORE });
    const legacy = await device('u9', 'web', { meta: false });
    await waitFor('replayed', () => legacy.seen.length === 1);
    expect(legacy.seen[0]!.data).toEqual({ legacy: true });
    expect(typeof legacy.seen[0]!.ack).toBe('function');
    legacy.seen[0]!.ack();
    await waitFor('removed', async () => (await inboxIds('u9')).length === 0);
  });

  it('deletes chosen messages or all of them, and lists in pages', async () => {
    for (const n of [1, 2, 3]) {
      await node.client.pushToUser({ userId: 'u10', event: 'notice', data: n, messageId: `x${n}`, deliveryMode: STORE });
    }
    const first = await node.client.listInbox({ userId: 'u10', pageSize: 2 });
    expect(first.messages.map((m) => m.messageId)).toEqual(['x1', 'x2']);
    const second = await node.client.listInbox({ userId: 'u10', pageSize: 2, pageToken: first.nextPageToken });
    expect(second.messages.map((m) => m.messageId)).toEqual(['x3']);
    expect(second.nextPageToken).toBe('');
    expect((await node.client.deleteInbox({ userId: 'u10', messageIds: ['x2', 'nope'] })).deleted).toBe(1);
    expect(await inboxIds('u10')).toEqual(['x1', 'x3']);
    expect((await node.client.deleteInbox({ userId: 'u10', all: true })).deleted).toBe(2);
    expect(await inboxIds('u10')).toEqual([]);
  });

  it('refuses storing options that make no sense, naming the field', async () => {
    const cases: [object, RegExp][] = [
      [{ deliveryMode: STORE, noAck: true }, /no_ack cannot be set with delivery_mode/],
      [{ ttlSeconds: 60 }, /ttl_seconds is only used with delivery_mode/],
      [{ deliveryMode: STORE, ttlSeconds: 999_999_999 }, /ttl_seconds must be at most 604800 \(PUSHGATE_INBOX_MAX_TTL_S\)/],
      [{ deliveryMode: 9 }, /delivery_mode 9 is not a DeliveryMode value/],
      [{ removal: RemovalPolicy.REMOVAL_POLICY_EACH_CLIENT_TYPE }, /removal is only used with delivery_mode/],
    ];
    for (const [fields, message] of cases) {
      const err = await grpcError(node.client.pushToUser({ userId: 'u11', event: 'notice', ...fields }));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(message);
    }
    const both = await grpcError(node.client.deleteInbox({ userId: 'u11', all: true, messageIds: ['a'] }));
    expect(both.details).toMatch(/message_ids cannot be combined with all/);
    expect((await grpcError(node.client.listInbox({ userId: 'u11', pageToken: 'zz' }))).details).toMatch(/page_token/);
  });
});

describe('offline inbox limits', () => {
  it('refuses a push into a full inbox with RESOURCE_EXHAUSTED under refuse_new', async () => {
    const node = await startNode({ PUSHGATE_INBOX_MAX_MESSAGES: '1', PUSHGATE_INBOX_FULL_POLICY: 'refuse_new' });
    try {
      await node.client.pushToUser({ userId: 'f', event: 'notice', data: 1, deliveryMode: STORE });
      const err = await grpcError(node.client.pushToUser({ userId: 'f', event: 'notice', data: 2, deliveryMode: STORE }));
      expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(err.details).toMatch(/PUSHGATE_INBOX_MAX_MESSAGES/);
    } finally {
      await node.stop();
    }
  });

  it('expires a stored message after its ttl_seconds and counts it', async () => {
    const node = await startNode();
    try {
      await node.client.pushToUser({ userId: 'e', event: 'notice', data: 1, deliveryMode: STORE, ttlSeconds: 1 });
      expect((await node.client.listInbox({ userId: 'e' })).messages).toHaveLength(1);
      await waitFor(
        'expired and counted',
        async () => {
          const metrics = await (await fetch(`${node.httpUrl}/metrics`)).text();
          return /^pushgate_inbox_expired_total 1$/m.test(metrics);
        },
        { timeoutMs: 5000 },
      );
      expect((await node.client.listInbox({ userId: 'e' })).messages).toEqual([]);
    } finally {
      await node.stop();
    }
  });
});
