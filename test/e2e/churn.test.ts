import type { StatusObject } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { type PresenceEvent, PresenceEventKind } from '../../src/gen/pushgate/v1/presence.js';
import { DeliveryStatus, type WatchPresenceResponse } from '../../src/gen/pushgate/v1/push_service.js';
import { startNode, type TestNode } from '../support/node.js';
import { waitFor } from '../support/wait.js';

/** Timers alive in this process (test clients and the node under test share it). */
function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
}

describe('churn', () => {
  let node: TestNode | undefined;
  afterEach(async () => {
    await node?.stop();
  });

  it('leaves nothing behind after many sessions come, get pushes, drop mid-wait and go', async () => {
    node = await startNode();
    const events: PresenceEvent[] = [];
    const watch = node.client.raw.watchPresence({ userIds: [], includeSnapshot: false, resumeAfter: '', maxEventsPerMessage: 0 });
    watch.on('data', (response: WatchPresenceResponse) => events.push(response.event!));
    let status: StatusObject | undefined;
    watch.on('status', (s: StatusObject) => (status = s));
    watch.on('error', () => {});
    await waitFor('the watcher to subscribe', () => node!.app.registry.subscriberCount() === 1);
    const timersBefore = activeTimers();

    const rounds = 40;
    for (let round = 0; round < rounds; round++) {
      const userId = `churn-${round % 5}`;
      const [app, pc, web] = await Promise.all(['app', 'pc', 'web'].map((type) => node!.connect(userId, type)));
      app!.on('notice', (_data: unknown, ack: (reply: unknown) => void) => ack('app'));
      pc!.on('notice', (_data: unknown, ack: (reply: unknown) => void) => ack('pc'));
      web!.on('notice', () => web!.close()); // drops while awaited
      const response = await node.client.pushToUser({ userId, event: 'notice', data: round, ackTimeoutMs: 20_000 });
      expect(response.deliveries.map((d) => d.status).sort()).toEqual(
        [DeliveryStatus.DELIVERY_STATUS_ACKED, DeliveryStatus.DELIVERY_STATUS_ACKED, DeliveryStatus.DELIVERY_STATUS_DISCONNECTED].sort(),
      );
      app!.close();
      pc!.close();
    }

    const app = node.app;
    await waitFor(
      'every session to be gone',
      async () => app.local.size === 0 && (await app.registry.sessionsPage([], undefined, 1)).sessions.length === 0,
    );
    expect(app.local.pendingWaits()).toBe(0);
    await waitFor(
      'presence to balance',
      () => events.filter((e) => e.kind === PresenceEventKind.PRESENCE_EVENT_KIND_USER_OFFLINE).length === rounds,
    );
    const count = (kind: PresenceEventKind): number => events.filter((e) => e.kind === kind).length;
    expect(count(PresenceEventKind.PRESENCE_EVENT_KIND_SESSION_CONNECTED)).toBe(rounds * 3);
    expect(count(PresenceEventKind.PRESENCE_EVENT_KIND_SESSION_DISCONNECTED)).toBe(rounds * 3);
    expect(count(PresenceEventKind.PRESENCE_EVENT_KIND_USER_ONLINE)).toBe(rounds);
    expect(app.registry.subscriberCount()).toBe(1);
    expect(status).toBeUndefined();
    // Ping timers of closed sockets, ack timers of finished pushes: all cleared.
    await waitFor(`timers back to ${timersBefore} (now ${activeTimers()})`, () => activeTimers() <= timersBefore);
    watch.cancel();
    await waitFor('the watcher to unsubscribe', () => app.registry.subscriberCount() === 0 && app.presence.size === 0);
  });
});
