import { randomBytes } from 'node:crypto';
import { status as GrpcStatus, Metadata, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../src/domain/session.js';
import { PushToUserRequest, PushToUserResponse, type WatchPresenceRequest } from '../../src/gen/pushgate/v1/push_service.js';
import { grpcError, type TestPushClient } from '../support/grpc-client.js';
import type { TestNode } from '../support/node.js';
import { churnPresence, eventsOf, presenceStreams, SNAPSHOT_COMPLETE, summary, type Watch } from '../support/presence-watch.js';
import { sessionRecord } from '../support/session-record.js';
import { testNodes } from '../support/test-nodes.js';
import { waitFor } from '../support/wait.js';

/**
 * The bounds of the gRPC API against callers that ask for too much: presence streams that stop
 * reading (in bytes), too many streams, too many user ids, deeply nested data, calls without a
 * deadline. Real nodes, real grpc-js clients; every refusal carries pushgate-error-code and
 * x-request-id, as any error does.
 */

const { cleanups, start } = testNodes();
const { watch, watchLive } = presenceStreams(cleanups);

/** Stable code and request id in the trailers: the call ended through the one error mapping. */
function expectTrailers(metadata: Metadata, code: string): void {
  expect(metadata.get('pushgate-error-code')).toEqual([code]);
  expect(metadata.get('x-request-id')).toHaveLength(1);
}

describe('presence buffer in bytes', () => {
  it('ends a reader that stopped reading once its unread events pass PUSHGATE_PRESENCE_BUFFER_BYTES, and keeps serving readers that keep up', async () => {
    // The event count bound (PUSHGATE_PRESENCE_BUFFER, 10,000 by default) is far away: only bytes can end it.
    const node = await start({ PUSHGATE_PRESENCE_BUFFER_BYTES: '65536' });
    const baseline = node.app.registry.subscriberCount();
    const keepingUp = await watchLive(node, {});
    const stalled = await watchLive(node, {});
    stalled.call.pause();

    // About 4 KB per event: a few dozen unread events pass the bound, where the count bound would take 10,000.
    const userAgent = `Mozilla/5.0 (load) ${'x'.repeat(4000)}`;
    const session = (userId: string, sessionId: string): SessionRecord =>
      sessionRecord(userId, sessionId, { nodeId: 'synthetic', remoteAddress: '203.0.113.9', userAgent });
    const expected = await churnPresence(node, session, () => node.app.registry.subscriberCount() === baseline + 2, 1000);

    // The server let go of the stalled stream long before the event count bound.
    expect(node.app.registry.subscriberCount()).toBe(baseline + 1);
    expect(expected.length).toBeLessThan(1000);
    await waitFor('the stalled stream to be forgotten', () => node.app.presence.size === 1);

    // The reader that keeps up got every event, in order, each with its long user agent, and is still open.
    expect(await eventsOf(keepingUp, expected.length)).toEqual(expected);
    expect(keepingUp.events.every((e) => e.session?.userAgent === userAgent)).toBe(true);
    expect(keepingUp.status).toBeUndefined();

    stalled.call.resume();
    await waitFor('the stalled stream to end', () => stalled.status, { timeoutMs: 10_000 });
    expect(stalled.status!.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(stalled.status!.details).toContain('65536 bytes behind (PUSHGATE_PRESENCE_BUFFER_BYTES)');
    expectTrailers(stalled.status!.metadata, 'presence_overflow');
    // What it did get is the start of the sequence, in order and without gaps, and far from all of it.
    const got = summary(stalled.events);
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThan(expected.length);
    expect(got).toEqual(expected.slice(0, got.length));
  });
});

/** A WatchPresence stream opened with the given metadata (an API key); its events are not kept. */
function watchWith(client: TestPushClient, metadata: Metadata, request: Partial<WatchPresenceRequest> = {}): Watch {
  const call = client.raw.watchPresence(
    { userIds: [], includeSnapshot: false, resumeAfter: '', maxEventsPerMessage: 0, ...request },
    metadata,
  );
  const stream: Watch = { call, events: [], messages: [], status: undefined };
  call.on('data', () => {});
  call.on('status', (status: StatusObject) => (stream.status = status));
  call.on('error', () => {});
  cleanups.push(() => call.cancel());
  return stream;
}

/** Waits until the node counts `count` open presence streams. */
async function openStreams(node: TestNode, count: number): Promise<void> {
  await waitFor(`${count} open presence streams (have ${node.app.presence.size})`, () => node.app.presence.size === count);
}

async function refused(stream: Watch): Promise<StatusObject> {
  const status = await waitFor('the stream to be refused', () => stream.status);
  expect(status.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
  expectTrailers(status.metadata, 'too_many_streams');
  return status;
}

describe('presence stream caps', () => {
  it('refuses a caller over PUSHGATE_MAX_WATCH_STREAMS_PER_CALLER with RESOURCE_EXHAUSTED, other callers still get streams, and an ended stream frees its slot', async () => {
    // Real API keys: the authentication interceptor names the caller in `pushgate-caller` for the
    // handlers (and drops any value a client sends itself, so a test cannot simply set it).
    const keys = { billing: randomBytes(24).toString('base64url'), reports: randomBytes(24).toString('base64url') };
    const node = await start({
      PUSHGATE_API_KEYS: `billing:read:${keys.billing};reports:read:${keys.reports}`,
      PUSHGATE_MAX_WATCH_STREAMS_PER_CALLER: '2',
    });
    const keyed = (key: string): Metadata => {
      const metadata = new Metadata();
      metadata.set('authorization', `Bearer ${key}`);
      // What the interceptor replaces: a client cannot name itself.
      metadata.set('pushgate-caller', 'someone-else');
      return metadata;
    };

    const first = watchWith(node.client, keyed(keys.billing));
    watchWith(node.client, keyed(keys.billing));
    await openStreams(node, 2);
    const third = await refused(watchWith(node.client, keyed(keys.billing)));
    expect(third.details).toContain('caller "billing" already has 2 presence streams open');
    expect(third.details).toContain('PUSHGATE_MAX_WATCH_STREAMS_PER_CALLER');

    const other = watchWith(node.client, keyed(keys.reports));
    await openStreams(node, 3);
    expect(other.status).toBeUndefined();

    first.call.cancel();
    await openStreams(node, 2);
    const again = watchWith(node.client, keyed(keys.billing));
    await openStreams(node, 3);
    expect(again.status).toBeUndefined();
    expect(node.app.registry.subscriberCount()).toBe(3);
  });

  it('refuses any stream over PUSHGATE_MAX_WATCH_STREAMS with RESOURCE_EXHAUSTED; unnamed callers count against the node only', async () => {
    // No API keys (the API on loopback): callers are unnamed, so the per-caller cap does not apply.
    const node = await start({ PUSHGATE_MAX_WATCH_STREAMS: '3', PUSHGATE_MAX_WATCH_STREAMS_PER_CALLER: '1' });
    const streams = [await watchLive(node), await watchLive(node), await watchLive(node)];
    expect(streams.every((s) => s.status === undefined)).toBe(true);

    const fourth = await refused(watch(node.client, {}));
    expect(fourth.details).toContain('3 presence streams open');
    expect(fourth.details).toContain('PUSHGATE_MAX_WATCH_STREAMS)');
    expect(node.app.registry.subscriberCount()).toBe(3);

    streams[0]!.call.cancel();
    await openStreams(node, 2);
    const again = await watchLive(node);
    expect(again.status).toBeUndefined();
    expect(node.app.presence.size).toBe(3);
  });
});

describe('WatchPresence user_ids', () => {
  const userIds = Array.from({ length: 50_000 }, (_, i) => `user-${i}`);

  it('answers a 50,000-id request with include_snapshot promptly when PUSHGATE_MAX_WATCH_USER_IDS allows it', async () => {
    const node = await start({ PUSHGATE_MAX_WATCH_USER_IDS: '50000' });
    // Some of them online, among users it does not watch.
    for (let i = 0; i < 50_000; i += 50) await node.app.registry.register(sessionRecord(`user-${i}`, `s-${i}`));
    for (let i = 0; i < 1000; i++) await node.app.registry.register(sessionRecord(`other-${i}`, `o-${i}`));

    const started = performance.now();
    const stream = watch(node.client, { userIds, includeSnapshot: true });
    const events = await eventsOf(stream, 1001);
    const elapsedMs = performance.now() - started;

    expect(events[1000]).toEqual([SNAPSHOT_COMPLETE, '', undefined, '', 0]);
    expect(new Set(events.slice(0, 1000).map(([, userId]) => userId)).size).toBe(1000);
    console.log(`[measured] WatchPresence snapshot over 50,000 user ids: ${elapsedMs.toFixed(0)} ms`);
    // A sanity bound against a pathological (quadratic) path, not a speed target: about 0.5 s on
    // a quiet 2-core machine, and CI shares the machine with everything else.
    expect(elapsedMs).toBeLessThan(5000);
    expect(stream.status).toBeUndefined();
  });

  it('refuses more user_ids than PUSHGATE_MAX_WATCH_USER_IDS (10,000 by default) with INVALID_ARGUMENT', async () => {
    const node = await start();
    const stream = watch(node.client, { userIds, includeSnapshot: true });
    const status = await waitFor('the stream to be refused', () => stream.status);

    expect(status.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(status.details).toContain('user_ids');
    expect(status.details).toContain('50000');
    expect(status.details).toContain('PUSHGATE_MAX_WATCH_USER_IDS');
    expectTrailers(status.metadata, 'invalid_argument');
    expect(stream.events).toEqual([]);
    expect(node.app.presence.size).toBe(0);
  });
});

// google.protobuf.Value on the wire, built by hand, so nesting of any depth can be sent without
// relying on a client library's (recursive) encoder.
function varint(n: number): Buffer {
  const bytes: number[] = [];
  for (; n > 0x7f; n = Math.floor(n / 128)) bytes.push((n & 0x7f) | 0x80);
  bytes.push(n);
  return Buffer.from(bytes);
}

function lengthDelimited(field: number, length: number): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(length)]);
}

/**
 * A Value nested `depth` levels deep, alternating lists and structs: [{"k": [{"k": … "leaf" …}]}].
 * Every level is a prefix of the level inside it, so the prefixes are built from the inside out.
 */
function nestedValue(depth: number): Buffer {
  const leaf = Buffer.concat([lengthDelimited(3, 4), Buffer.from('leaf')]); // Value.string_value
  const prefixes: Buffer[] = [];
  let size = leaf.length;
  for (let level = depth; level >= 1; level--) {
    if (level % 2 === 1) {
      // Value{list_value: ListValue{values: [inner]}}
      const list = lengthDelimited(1, size);
      const value = lengthDelimited(6, list.length + size);
      prefixes.push(list, value);
      size += list.length + value.length;
    } else {
      // Value{struct_value: Struct{fields: [Entry{key: "k", value: inner}]}}
      const entryBody = Buffer.concat([lengthDelimited(1, 1), Buffer.from('k'), lengthDelimited(2, size)]);
      const entry = lengthDelimited(1, entryBody.length + size);
      const struct = lengthDelimited(5, entry.length + entryBody.length + size);
      prefixes.push(entryBody, entry, struct);
      size += entryBody.length + entry.length + struct.length;
    }
  }
  return Buffer.concat([...prefixes.reverse(), leaf]);
}

/** The same value as JSON data, for comparing what a client receives. */
function nestedData(depth: number): unknown {
  let data: unknown = 'leaf';
  for (let level = depth; level >= 1; level--) data = level % 2 === 1 ? [data] : { k: data };
  return data;
}

/** PushToUser with `data` (field 3) given as raw bytes, appended to an encoded request. */
function pushRaw(client: TestPushClient, request: Partial<PushToUserRequest>, data: Buffer): Promise<PushToUserResponse> {
  return pushBytes(client, Buffer.concat([encoded(request), lengthDelimited(3, data.length), data]));
}

function encoded(request: Partial<PushToUserRequest>): Buffer {
  return Buffer.from(PushToUserRequest.encode(PushToUserRequest.fromPartial(request)).finish());
}

/** PushToUser with these exact request bytes. */
function pushBytes(client: TestPushClient, bytes: Buffer): Promise<PushToUserResponse> {
  return new Promise<PushToUserResponse>((resolve, reject) => {
    client.raw.makeUnaryRequest<Buffer, PushToUserResponse>(
      '/pushgate.v1.PushService/PushToUser',
      (body) => body,
      (body) => PushToUserResponse.decode(body),
      bytes,
      new Metadata(),
      {},
      (err: ServiceError | null, response?: PushToUserResponse) => (err ? reject(err) : resolve(response!)),
    );
  });
}

describe('PushToUser data depth', () => {
  it('delivers data nested as deep as PUSHGATE_MAX_DATA_DEPTH (32 by default), whole', async () => {
    const node = await start();
    const socket = await node.connect('u-deep', 'web');
    const received: unknown[] = [];
    socket.on('notice', (data: unknown, ack: (reply: unknown) => void) => {
      received.push(data);
      ack('ok');
    });

    const response = await pushRaw(node.client, { userId: 'u-deep', event: 'notice' }, nestedValue(32));
    expect(response.acked).toBe(1);
    expect(received).toEqual([nestedData(32)]);
    // Through the ordinary client as well.
    expect((await node.client.pushToUser({ userId: 'u-deep', event: 'notice', data: nestedData(32) })).acked).toBe(1);
  });

  it.each([33, 200, 5000])('refuses data nested %i levels deep with INVALID_ARGUMENT naming PUSHGATE_MAX_DATA_DEPTH', async (depth) => {
    const node = await start();
    const socket = await node.connect('u-deep', 'web');
    const received: unknown[] = [];
    socket.on('notice', (data: unknown) => received.push(data));

    const err = await grpcError(pushRaw(node.client, { userId: 'u-deep', event: 'notice' }, nestedValue(depth)));

    expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(err.details).toBe('data is nested deeper than 32 levels (PUSHGATE_MAX_DATA_DEPTH)');
    expectTrailers(err.metadata, 'invalid_argument');
    // The node is fine and the client got nothing.
    expect((await node.client.pushToUser({ userId: 'u-deep', event: 'other', noAck: true })).deliveries).toHaveLength(1);
    expect(received).toEqual([]);
  });

  it('refuses a request that is not a valid message with INVALID_ARGUMENT and trailers, not a bare INTERNAL', async () => {
    const node = await start();
    // `data` claims 100 bytes, and three follow.
    const truncated = Buffer.concat([encoded({ userId: 'u-1', event: 'notice' }), lengthDelimited(3, 100), Buffer.from([8, 1, 8])]);
    const err = await grpcError(pushBytes(node.client, truncated));
    expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(err.details).toContain('request is not a valid pushgate.v1.PushToUserRequest');
    expectTrailers(err.metadata, 'invalid_argument');
  });
});

describe('unary call cap', () => {
  it('ends a push without a deadline (or with a later one) at PUSHGATE_GRPC_MAX_CALL_MS with DEADLINE_EXCEEDED, leaving no ack wait behind', async () => {
    const node = await start({
      PUSHGATE_GRPC_MAX_CALL_MS: '1500',
      PUSHGATE_MAX_ACK_TIMEOUT_MS: '1400',
      PUSHGATE_ACK_TIMEOUT_MS: '1000',
    });
    await node.connect('u-silent', 'web'); // never acks: it has no listener for the event
    // A registry slow to answer, as a loaded Redis would be: the lookup (1 s) and the longest ack
    // wait the node allows (1.4 s) together outlast the cap, so the cap is what ends the call.
    const { registry } = node.app;
    const lookup = registry.lookup.bind(registry);
    registry.lookup = async (userId, filter) => {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      return lookup(userId, filter);
    };

    for (const options of [{}, { deadline: Date.now() + 60_000 }]) {
      const started = performance.now();
      const pending = grpcError(node.client.pushToUser({ userId: 'u-silent', event: 'notice', ackTimeoutMs: 1400 }, options));
      await waitFor('the push to wait for its ack', () => node.app.local.pendingWaits() === 1);
      const err = await pending;
      const elapsedMs = performance.now() - started;

      expect(err.code).toBe(GrpcStatus.DEADLINE_EXCEEDED);
      expect(err.details).toContain('1500 ms');
      expect(err.details).toContain('PUSHGATE_GRPC_MAX_CALL_MS');
      expectTrailers(err.metadata, 'deadline_exceeded');
      expect(elapsedMs).toBeGreaterThanOrEqual(1450);
      expect(elapsedMs).toBeLessThan(2300); // the ack timeout would have ended it at 2.4 s
      expect(node.app.local.pendingWaits()).toBe(0);
    }
  });

  it('leaves no timer per call behind once calls end', async () => {
    const node = await start();
    const timers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
    await node.client.listSessions({ userId: 'u-1' });
    const before = timers();

    for (let i = 0; i < 50; i++) await node.client.listSessions({ userId: 'u-1' });
    await node.client.pushToUser({ userId: 'u-1', event: 'notice' });

    // Every call is capped (PUSHGATE_GRPC_MAX_CALL_MS, 120 s): one timer serves them all, none is left per call.
    expect(timers() - before).toBeLessThan(5);
  });
});
