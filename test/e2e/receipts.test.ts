import { Metadata, status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeliveryMode, type ReceiptEvent, ReceiptEventKind, WaitFor } from '../../src/gen/pushgate/v1/inbox.js';
import {
  DeliveryStatus,
  GetMessageRequest,
  type GetMessageResponse,
  WatchReceiptsRequest,
  type WatchReceiptsResponse,
} from '../../src/gen/pushgate/v1/push_service.js';
import { grpcError } from '../support/grpc-client.js';
import { type InboxDevices, inboxDevices } from '../support/inbox-devices.js';
import { startNode, type TestNode } from '../support/node.js';
import { waitFor } from '../support/wait.js';

const { ACKED, PENDING, TIMEOUT } = {
  ACKED: DeliveryStatus.DELIVERY_STATUS_ACKED,
  PENDING: DeliveryStatus.DELIVERY_STATUS_PENDING,
  TIMEOUT: DeliveryStatus.DELIVERY_STATUS_TIMEOUT,
};

/** Receipts, idempotent pushes and completion policies on one node (memory stores). */
describe('receipts, idempotency and wait_for (one node)', () => {
  let node: TestNode;
  let devices: InboxDevices;
  const streams: { cancel(): void }[] = [];

  beforeEach(async () => {
    node = await startNode({ PUSHGATE_INBOX_MAX_MESSAGES: '2' });
    devices = inboxDevices();
  });
  afterEach(async () => {
    for (const stream of streams.splice(0)) stream.cancel();
    devices.closeAll();
    await node.stop();
  });

  function getMessage(messageId: string): Promise<GetMessageResponse> {
    return new Promise((resolve, reject) =>
      node.client.raw.getMessage(GetMessageRequest.fromPartial({ messageId }), new Metadata(), (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
  }

  /** Opens a WatchReceipts stream and collects its events; `ended` settles with the stream's status. */
  function watch(request: Partial<WatchReceiptsRequest> = {}): { events: ReceiptEvent[]; ended: Promise<number>; cancel(): void } {
    const call = node.client.raw.watchReceipts(WatchReceiptsRequest.fromPartial(request));
    const events: ReceiptEvent[] = [];
    call.on('data', (response: WatchReceiptsResponse) => events.push(response.event!));
    const ended = new Promise<number>((resolve) => {
      call.on('error', (err: { code: number }) => resolve(err.code));
      call.on('end', () => resolve(status.OK));
    });
    const stream = { events, ended, cancel: () => call.cancel() };
    streams.push(stream);
    return stream;
  }

  it('delivers a repeated message_id once and returns the first result, marked duplicate', async () => {
    const phone = await devices.device(node.httpUrl, 'i1', 'app');
    const push = { userId: 'i1', event: 'notice', data: { n: 1 }, messageId: 'order-7' };
    const first = node.client.pushToUser(push);
    const concurrent = node.client.pushToUser(push);
    await waitFor('the client got it', () => phone.seen.length === 1);
    setTimeout(() => phone.seen[0]!.ack('ok'), 100);
    const [a, b] = await Promise.all([first, concurrent]);
    expect([a.duplicate, b.duplicate].sort()).toEqual([false, true]);
    for (const result of [a, b]) {
      expect(result.deliveries.map((d) => [d.status, d.ackData])).toEqual([[ACKED, 'ok']]);
    }
    const again = await node.client.pushToUser(push);
    expect(again.duplicate).toBe(true);
    expect(again.acked).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(phone.seen).toHaveLength(1);

    const reused = await grpcError(node.client.pushToUser({ ...push, userId: 'someone-else' }));
    expect(reused.code).toBe(status.ALREADY_EXISTS);
    expect(reused.details).toMatch(/message_id "order-7" was already used for another push/);
    const otherTypes = await grpcError(node.client.pushToUser({ ...push, clientTypes: ['web'] }));
    expect(otherTypes.code).toBe(status.ALREADY_EXISTS);
  });

  it('wait_for ANY returns at the first ack; the others are PENDING in the reply and ACKED in the receipt later', async () => {
    const fast = await devices.device(node.httpUrl, 'w1', 'app', { autoAck: true });
    const slow = await devices.device(node.httpUrl, 'w1', 'pc');
    const events = watch({ userIds: ['w1'] });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    const reply = await node.client.pushToUser({
      userId: 'w1',
      event: 'notice',
      data: 1,
      messageId: 'any-1',
      waitFor: WaitFor.WAIT_FOR_ANY,
    });
    expect(Date.now() - started).toBeLessThan(1000);
    const byType = new Map(reply.deliveries.map((d) => [d.session!.clientType, d.status]));
    expect(byType).toEqual(
      new Map([
        ['app', ACKED],
        ['pc', PENDING],
      ]),
    );
    expect(fast.seen).toHaveLength(1);
    await waitFor('the slow client got it', () => slow.seen.length === 1);
    slow.seen[0]!.ack('later');
    await waitFor('the receipt has both acks', async () => (await getMessage('any-1')).deliveries.every((d) => d.status === ACKED));
    const receipt = await getMessage('any-1');
    expect(receipt.deliveries.find((d) => d.session!.clientType === 'pc')!.ackData).toBe('later');
    await waitFor('the late ack as an event', () => events.events.some((e) => e.kind === ReceiptEventKind.RECEIPT_EVENT_KIND_ACKED));
    expect(events.events.map((e) => [e.kind, e.messageId, e.clientType, e.replay])).toEqual([
      [ReceiptEventKind.RECEIPT_EVENT_KIND_ACKED, 'any-1', 'pc', false],
    ]);
  });

  it('wait_for NONE returns once sent, every session PENDING, and the receipt fills in', async () => {
    const client = await devices.device(node.httpUrl, 'w2', 'web');
    const reply = await node.client.pushToUser({ userId: 'w2', event: 'notice', data: 2, waitFor: WaitFor.WAIT_FOR_NONE });
    expect(reply.deliveries.map((d) => d.status)).toEqual([PENDING]);
    await waitFor('sent', () => client.seen.length === 1);
    client.seen[0]!.ack();
    await waitFor('acked in the receipt', async () => (await getMessage(reply.messageId)).deliveries[0]?.status === ACKED);
  });

  it('records an ack that comes after the TIMEOUT of a tracked push', async () => {
    const client = await devices.device(node.httpUrl, 'l1', 'app');
    const events = watch();
    const reply = await node.client.pushToUser({ userId: 'l1', event: 'notice', data: 3, messageId: 'late-1', ackTimeoutMs: 100 });
    expect(reply.deliveries.map((d) => d.status)).toEqual([TIMEOUT]);
    expect((await getMessage('late-1')).deliveries.map((d) => d.status)).toEqual([TIMEOUT]);
    client.seen[0]!.ack({ read: true });
    await waitFor('the late ack recorded', async () => (await getMessage('late-1')).deliveries[0]?.status === ACKED);
    expect((await getMessage('late-1')).deliveries[0]!.ackData).toEqual({ read: true });
    await waitFor('an ACKED event', () => events.events.length === 1);
    expect(events.events[0]).toMatchObject({ kind: ReceiptEventKind.RECEIPT_EVENT_KIND_ACKED, messageId: 'late-1', userId: 'l1' });
  });

  it('streams the inbox life of messages: stored, acked on replay, dropped, deleted, expired', async () => {
    const events = watch({ userIds: ['s1'] });
    const store = { userId: 's1', event: 'notice', deliveryMode: DeliveryMode.DELIVERY_MODE_STORE };
    await node.client.pushToUser({ ...store, data: 1, messageId: 'a' });
    await node.client.pushToUser({ ...store, data: 2, messageId: 'b' });
    await node.client.pushToUser({ ...store, data: 3, messageId: 'c' }); // the inbox holds 2: 'a' is dropped
    await node.client.deleteInbox({ userId: 's1', messageIds: ['b'] });
    const client = await devices.device(node.httpUrl, 's1', 'app', { autoAck: true });
    await waitFor('c replayed', () => client.seen.length === 1);
    await node.client.pushToUser({ ...store, userId: 's1-other', data: 4, messageId: 'not-watched' });
    client.socket.close();
    await node.client.pushToUser({ ...store, data: 5, messageId: 'e', ttlSeconds: 1 });
    const K = ReceiptEventKind;
    const expected = [
      [K.RECEIPT_EVENT_KIND_STORED, 'a'],
      [K.RECEIPT_EVENT_KIND_STORED, 'b'],
      [K.RECEIPT_EVENT_KIND_DROPPED, 'a'],
      [K.RECEIPT_EVENT_KIND_STORED, 'c'],
      [K.RECEIPT_EVENT_KIND_DELETED, 'b'],
      [K.RECEIPT_EVENT_KIND_ACKED, 'c'],
      [K.RECEIPT_EVENT_KIND_STORED, 'e'],
      [K.RECEIPT_EVENT_KIND_EXPIRED, 'e'],
    ];
    await waitFor('every event', () => events.events.length >= expected.length, { timeoutMs: 5000 });
    expect(events.events.map((e) => [e.kind, e.messageId])).toEqual(expected);
    expect(events.events.find((e) => e.kind === K.RECEIPT_EVENT_KIND_ACKED)).toMatchObject({ replay: true, clientType: 'app' });

    const removed = await Promise.all(['a', 'b', 'c', 'e'].map(getMessage));
    expect(removed.map((r) => [r.stored, r.removed])).toEqual([
      [false, K.RECEIPT_EVENT_KIND_DROPPED],
      [false, K.RECEIPT_EVENT_KIND_DELETED],
      [false, K.RECEIPT_EVENT_KIND_ACKED],
      [false, K.RECEIPT_EVENT_KIND_EXPIRED],
    ]);
    const replayed = removed[2]!;
    expect(replayed.deliveries.map((d) => d.status)).toEqual([ACKED]);
    expect(replayed.attempts.map((a) => [a.attempt, a.replay])).toEqual([[1, true]]);

    // Resuming after the third event gives exactly the rest, in order.
    const resumed = watch({ userIds: ['s1'], resumeAfter: events.events[2]!.cursor });
    await waitFor('the rest', () => resumed.events.length >= expected.length - 3);
    expect(resumed.events.map((e) => e.cursor)).toEqual(events.events.slice(3).map((e) => e.cursor));
  });

  it('ends open receipt streams with OK when the node stops, so a drain does not wait on them', async () => {
    const stream = watch();
    await waitFor('the stream to be open', () => node.app.delivery.receipts.watchCount === 1);
    const started = Date.now();
    await node.app.stop();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await stream.ended).toBe(status.OK);
    expect(node.app.delivery.receipts.watchCount).toBe(0);
  });

  it('answers NOT_FOUND for a message without a receipt, and FAILED_PRECONDITION for a stale cursor', async () => {
    const untracked = await node.client.pushToUser({ userId: 'n1', event: 'notice', data: 1 });
    const missing = await grpcError(getMessage(untracked.messageId));
    expect(missing.code).toBe(status.NOT_FOUND);
    expect(missing.details).toMatch(/receipts are kept for pushes with the caller's own message_id/);
    expect(await watch({ resumeAfter: '0000000000000000-5' }).ended).toBe(status.FAILED_PRECONDITION);
    const bad = await grpcError(node.client.pushToUser({ userId: 'n1', event: 'notice', noAck: true, waitFor: WaitFor.WAIT_FOR_ANY }));
    expect(bad.details).toMatch(/wait_for ANY or NONE needs acks/);
  });
});
