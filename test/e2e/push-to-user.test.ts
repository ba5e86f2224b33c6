import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeliveryStatus } from '../../src/gen/pushgate/v1/push_service.js';
import { startNode, type TestNode } from '../support/node.js';
import { waitFor } from '../support/wait.js';

describe('PushToUser', () => {
  let node: TestNode;
  beforeEach(async () => {
    node = await startNode();
  });
  afterEach(async () => {
    await node.stop();
  });

  it('delivers to the app, pc and web clients of one user and returns each ack', async () => {
    const clients = await Promise.all(['app', 'pc', 'web'].map((type) => node.connect('61', type)));
    const received: unknown[] = [];
    clients.forEach((socket, i) => {
      socket.on('notice', (data: unknown, ack: (reply: unknown) => void) => {
        received.push(data);
        ack({ seenBy: ['app', 'pc', 'web'][i] });
      });
    });

    const response = await node.client.pushToUser({ userId: '61', event: 'notice', data: { title: 'approve PO-7', amount: 12.5 } });

    expect(received).toEqual([{ title: 'approve PO-7', amount: 12.5 }, { title: 'approve PO-7', amount: 12.5 }, { title: 'approve PO-7', amount: 12.5 }]);
    expect(response.acked).toBe(3);
    expect(response.timedOut).toBe(0);
    expect(response.failed).toBe(0);
    expect(response.messageId).toMatch(/^[0-9a-f-]{36}$/);
    const byType = new Map(response.deliveries.map((d) => [d.session!.clientType, d]));
    expect([...byType.keys()].sort()).toEqual(['app', 'pc', 'web']);
    for (const [type, delivery] of byType) {
      expect(delivery.status).toBe(DeliveryStatus.DELIVERY_STATUS_ACKED);
      expect(delivery.ackData).toEqual({ seenBy: type });
      expect(delivery.latencyUs).toBeGreaterThan(0);
      expect(delivery.latencyUs).toBeLessThan(1_000_000);
      expect(delivery.session!.userId).toBe('61');
      expect(delivery.session!.nodeId).toBe(node.app.config.nodeId);
    }
    expect(new Set(response.deliveries.map((d) => d.session!.sessionId))).toEqual(new Set(clients.map((c) => c.id)));
  });

  it('reports DISCONNECTED at once for a client that closes while awaited', async () => {
    const quitter = await node.connect('7', 'web');
    quitter.on('notice', () => {
      setTimeout(() => quitter.close(), 50);
    });
    const started = Date.now();
    const response = await node.client.pushToUser({ userId: '7', event: 'notice', data: 1, ackTimeoutMs: 5000 });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(response.deliveries.map((d) => d.status)).toEqual([DeliveryStatus.DELIVERY_STATUS_DISCONNECTED]);
    expect(response.failed).toBe(1);
    await waitFor('no pending waits', () => node.app.local.pendingWaits() === 0);
  });
});
