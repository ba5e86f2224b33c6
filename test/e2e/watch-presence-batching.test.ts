import { status as GrpcStatus } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { eventsOf, presenceStreams, summary } from '../support/presence-watch.js';
import { sessionRecord } from '../support/session-record.js';
import { testNodes } from '../support/test-nodes.js';
import { waitFor } from '../support/wait.js';

const { cleanups, start } = testNodes();
const { watch, watchLive } = presenceStreams(cleanups);

describe('WatchPresence max_events_per_message', () => {
  it('sends the same events in the same order as one per message, several to a message when they are waiting', async () => {
    const node = await start();
    const single = await watchLive(node);
    const batched = await watchLive(node, { maxEventsPerMessage: 5 });

    // A burst: 12 sessions registered at once (24 events: online and connected for each user) are
    // all queued before the streams' writers run again.
    const { registry } = node.app;
    await Promise.all(Array.from({ length: 12 }, (_, i) => registry.register(sessionRecord(`u-${i}`, `s-${i}`, { nodeId: 'elsewhere' }))));
    await eventsOf(batched, 24);
    // Then a lone event: it goes out at once, alone, not held back to fill a message.
    const live = await node.connect('u-live', 'app');
    await eventsOf(batched, 26);
    live.close();
    await eventsOf(single, 28);
    await eventsOf(batched, 28);

    expect(summary(batched.events)).toEqual(summary(single.events));
    expect(batched.events.map((e) => e.cursor)).toEqual(single.events.map((e) => e.cursor));
    expect(single.messages.every((n) => n === 1)).toBe(true);
    expect(Math.max(...batched.messages)).toBe(5);
    expect(batched.messages.length).toBeLessThan(batched.events.length / 2);
  });

  it('refuses more than 1000 events per message with INVALID_ARGUMENT naming max_events_per_message, and keeps no stream', async () => {
    const node = await start();
    const stream = watch(node.client, { maxEventsPerMessage: 1001 });
    const status = await waitFor('the stream to end', () => stream.status);
    expect(status.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(status.details).toContain('max_events_per_message');
    expect(status.details).toContain('1000');
    expect(node.app.presence.size).toBe(0);
  });
});
