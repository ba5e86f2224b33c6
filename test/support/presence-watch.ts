import { setImmediate as nextTurn } from 'node:timers/promises';
import { Client, type ClientReadableStream, credentials, type StatusObject } from '@grpc/grpc-js';
import type { SessionRecord } from '../../src/domain/session.js';
import { type PresenceEvent, PresenceEventKind } from '../../src/gen/pushgate/v1/presence.js';
import { PushServiceService, WatchPresenceRequest, type WatchPresenceResponse } from '../../src/gen/pushgate/v1/push_service.js';
import type { TestPushClient } from './grpc-client.js';
import type { TestNode } from './node.js';
import { waitFor } from './wait.js';

// WatchPresence as a backend consumes it, for the e2e tests that check the presence stream.

/** Presence event kinds by short name, for the expected rows in a test. */
export const {
  PRESENCE_EVENT_KIND_SESSION_CONNECTED: CONNECTED,
  PRESENCE_EVENT_KIND_SESSION_DISCONNECTED: DISCONNECTED,
  PRESENCE_EVENT_KIND_USER_ONLINE: ONLINE,
  PRESENCE_EVENT_KIND_USER_OFFLINE: OFFLINE,
  PRESENCE_EVENT_KIND_SNAPSHOT_COMPLETE: SNAPSHOT_COMPLETE,
} = PresenceEventKind;

/** One WatchPresence stream as a backend would consume it: every event in order, then its status. */
export interface Watch {
  readonly call: ClientReadableStream<WatchPresenceResponse>;
  readonly events: PresenceEvent[];
  /** Events per message received, in order (all 1 unless the request set max_events_per_message). */
  readonly messages: number[];
  status: StatusObject | undefined;
}

/** What a presence consumer acts on: kind, user, session, reason and session count. */
export type Summary = [kind: PresenceEventKind, userId: string, sessionId: string | undefined, reason: string, sessionCount: number];

/** The events as rows a test compares with `toEqual`. */
export function summary(events: readonly PresenceEvent[]): Summary[] {
  return events.map((e) => [e.kind, e.userId, e.session?.sessionId, e.reason, e.sessionCount]);
}

/** Opens streams; a test file binds them to its `cleanups`, which cancel every stream after each test. */
export interface PresenceStreams {
  /** Opens a stream and returns at once (before the server has subscribed it). */
  watch(client: TestPushClient, request: Partial<WatchPresenceRequest>): Watch;
  /** Opens a stream (through `client`, by default the node's) and waits until the node has subscribed it to the registry. */
  watchLive(node: TestNode, request?: Partial<WatchPresenceRequest>, client?: TestPushClient): Promise<Watch>;
}

/** `watch` and `watchLive` for a test file: every stream they open is cancelled by a step pushed on `cleanups`. */
export function presenceStreams(cleanups: (() => unknown)[]): PresenceStreams {
  function watch(client: TestPushClient, request: Partial<WatchPresenceRequest>): Watch {
    const call = client.raw.watchPresence({ userIds: [], includeSnapshot: false, resumeAfter: '', maxEventsPerMessage: 0, ...request });
    const stream: Watch = { call, events: [], messages: [], status: undefined };
    call.on('data', (response: WatchPresenceResponse) => {
      const events = response.event === undefined ? response.events : [response.event];
      stream.events.push(...events);
      stream.messages.push(events.length);
    });
    call.on('status', (status: StatusObject) => (stream.status = status));
    // Non-OK statuses also arrive as 'error'; the test reads them from `status`.
    call.on('error', () => {});
    cleanups.push(() => call.cancel());
    return stream;
  }

  async function watchLive(node: TestNode, request: Partial<WatchPresenceRequest> = {}, client = node.client): Promise<Watch> {
    const before = node.app.registry.subscriberCount();
    const stream = watch(client, request);
    await waitFor('the presence stream to be subscribed', () => node.app.registry.subscriberCount() === before + 1);
    return stream;
  }

  return { watch, watchLive };
}

/** A WatchPresence stream read as the bytes of each message, undecoded: what the node wrote, byte for byte. */
export interface RawWatch {
  readonly call: ClientReadableStream<Buffer>;
  readonly messages: Buffer[];
  status: StatusObject | undefined;
}

/** Opens `count` streams watching every user on one connection to `address`; `cleanups` cancels them and closes it. */
export function watchRaw(address: string, count: number, cleanups: (() => unknown)[]): RawWatch[] {
  const client = new Client(address, credentials.createInsecure());
  const { path } = PushServiceService.watchPresence;
  const request = WatchPresenceRequest.fromPartial({});
  const serialize = (r: WatchPresenceRequest): Buffer => Buffer.from(WatchPresenceRequest.encode(r).finish());
  const streams = Array.from({ length: count }, (): RawWatch => {
    const call = client.makeServerStreamRequest(path, serialize, (bytes: Buffer) => bytes, request);
    const stream: RawWatch = { call, messages: [], status: undefined };
    call.on('data', (bytes: Buffer) => stream.messages.push(bytes));
    call.on('status', (status: StatusObject) => (stream.status = status));
    call.on('error', () => {});
    return stream;
  });
  cleanups.push(() => {
    for (const stream of streams) stream.call.cancel();
    client.close();
  });
  return streams;
}

/** Cancels a stream and waits until the node has let go of it (its registry subscription is gone). */
export async function stopWatching(node: TestNode, stream: Watch): Promise<void> {
  const before = node.app.registry.subscriberCount();
  stream.call.cancel();
  await waitFor('the cancelled stream to unsubscribe', () => node.app.registry.subscriberCount() === before - 1);
}

/** Waits until a stream holds at least `count` events and returns all of them as rows. */
export async function eventsOf(stream: Watch, count: number, timeoutMs = 5000): Promise<Summary[]> {
  await waitFor(`${count} presence events (have ${stream.events.length})`, () => stream.events.length >= count, { timeoutMs });
  return summary(stream.events);
}

/**
 * Presence churn as on a busy node: sessions registered and unregistered straight through the
 * registry, each change given an event-loop turn, for as long as `keepGoing()` holds (at most
 * `maxCycles`). Returns the events every watcher should have seen, in order.
 */
export async function churnPresence(
  node: TestNode,
  session: (userId: string, sessionId: string) => SessionRecord,
  keepGoing: () => boolean,
  maxCycles: number,
): Promise<Summary[]> {
  const expected: Summary[] = [];
  for (let cycle = 0; cycle < maxCycles && keepGoing(); cycle++) {
    const [userId, sessionId] = [`load-${cycle}`, `s-${cycle}`];
    await node.app.registry.register(session(userId, sessionId));
    await nextTurn();
    await node.app.registry.unregister(userId, sessionId, 'client_disconnect');
    await nextTurn();
    expected.push(
      [ONLINE, userId, sessionId, '', 1],
      [CONNECTED, userId, sessionId, '', 1],
      [DISCONNECTED, userId, sessionId, 'client_disconnect', 0],
      [OFFLINE, userId, sessionId, 'client_disconnect', 0],
    );
  }
  return expected;
}
