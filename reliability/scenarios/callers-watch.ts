import { type ClientReadableStream, Metadata, type ServiceError } from '@grpc/grpc-js';
import { PresenceEventKind } from '../../src/gen/pushgate/v1/presence.js';
import type { PushServiceClient, WatchPresenceResponse } from '../../src/gen/pushgate/v1/push_service.js';

export type Watch = ClientReadableStream<WatchPresenceResponse>;

export interface OpenedWatches {
  readonly watches: Watch[];
  /** Streams refused (or ended) before their snapshot completed. */
  readonly failed: number;
  readonly firstError: string;
  /** Until every snapshot stream completed its snapshot (live streams are not waited for). */
  readonly ms: number;
  /** Snapshot events and the messages they came in, over every snapshot stream. */
  readonly snapshotEvents: number;
  readonly snapshotMessages: number;
}

/** Events per message asked for: the snapshot should come in a few messages (push_service.proto). */
const EVENTS_PER_MESSAGE = 100;

/**
 * Opens `count` WatchPresence streams of every user through `client`. Every `snapshotEvery`-th
 * asks for the snapshot and is waited for until it completes (which proves the node holds it); the
 * others are live streams that get nothing until presence changes, so the caller learns they are
 * held from the node's subscriber count. A stream that fails is reported, not retried.
 */
export async function openWatches(client: PushServiceClient, count: number, snapshotEvery = 1): Promise<OpenedWatches> {
  const started = performance.now();
  const watches: Watch[] = [];
  const errors: string[] = [];
  let snapshotEvents = 0;
  let snapshotMessages = 0;
  const snapshots: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const snapshot = i % snapshotEvery === 0;
    const call = client.watchPresence(
      { userIds: [], includeSnapshot: snapshot, resumeAfter: '', maxEventsPerMessage: EVENTS_PER_MESSAGE },
      new Metadata(),
    );
    watches.push(call);
    let inSnapshot = snapshot;
    const done = new Promise<void>((resolve) => {
      call.on('data', (response: WatchPresenceResponse) => {
        if (!inSnapshot) return;
        const events = response.event === undefined ? response.events : [response.event];
        snapshotMessages++;
        snapshotEvents += events.length;
        if (events.some((e) => e.kind === PresenceEventKind.PRESENCE_EVENT_KIND_SNAPSHOT_COMPLETE)) {
          inSnapshot = false;
          resolve();
        }
      });
      call.on('error', (err: ServiceError) => {
        // CANCELLED is our own cancel(); anything else before the snapshot is a refusal.
        if (err.code !== 1) errors.push(`${err.code} ${err.details}`);
        resolve();
      });
      call.on('end', () => resolve());
    });
    if (snapshot) snapshots.push(done);
  }
  await Promise.all(snapshots);
  return { watches, failed: errors.length, firstError: errors[0] ?? '', ms: performance.now() - started, snapshotEvents, snapshotMessages };
}
