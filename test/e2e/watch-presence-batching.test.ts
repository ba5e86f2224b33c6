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

  it('packs a snapshot and a resume catch-up too, not only live bursts', async () => {
    // Finding of the reliability suite: snapshot and catch-up events went out one per message
    // whatever max_events_per_message said, and 200 snapshot streams over 100 sessions took 4.5 s.
    const node = await start();
    const live = await watchLive(node);
    const { registry } = node.app;
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => registry.register(sessionRecord(`snap-${i}`, `s-${i}`, { nodeId: 'elsewhere' }))),
    );
    await eventsOf(live, 40); // online and connected for each user

    const single = watch(node.client, { includeSnapshot: true });
    const packed = watch(node.client, { includeSnapshot: true, maxEventsPerMessage: 100 });
    await eventsOf(single, 21);
    await eventsOf(packed, 21);
    expect(summary(packed.events)).toEqual(summary(single.events));
    expect(single.messages).toHaveLength(21);
    // The snapshot's page of 20 sessions in one message, then SNAPSHOT_COMPLETE.
    expect(packed.messages).toEqual([20, 1]);

    // Resuming after the first live event: the 39 since come from the feed, a page at a time.
    const cursor = live.events[0]!.cursor;
    const resumedSingle = watch(node.client, { resumeAfter: cursor });
    const resumedPacked = watch(node.client, { resumeAfter: cursor, maxEventsPerMessage: 100 });
    await eventsOf(resumedSingle, 39);
    await eventsOf(resumedPacked, 39);
    expect(summary(resumedPacked.events)).toEqual(summary(live.events.slice(1)));
    expect(summary(resumedSingle.events)).toEqual(summary(live.events.slice(1)));
    expect(resumedPacked.messages).toEqual([39]);
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
