import { type ChildProcess, spawn } from 'node:child_process';
import { type AddressInfo, createServer, type Server as TcpServer, type Socket as TcpSocket, connect as tcpConnect } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { status as GrpcStatus, type StatusObject } from '@grpc/grpc-js';
import type { Socket } from 'socket.io-client';
import { describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../src/domain/session.js';
import { WatchPresenceResponse } from '../../src/gen/pushgate/v1/push_service.js';
import { TestPushClient } from '../support/grpc-client.js';
import type { TestNode } from '../support/node.js';
import {
  CONNECTED,
  churnPresence,
  DISCONNECTED,
  eventsOf,
  OFFLINE,
  ONLINE,
  presenceStreams,
  type RawWatch,
  SNAPSHOT_COMPLETE,
  type Summary,
  stopWatching,
  summary,
  type Watch,
  watchRaw,
} from '../support/presence-watch.js';
import { sessionRecord } from '../support/session-record.js';
import { testNodes } from '../support/test-nodes.js';
import { signToken } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

const { cleanups, start } = testNodes();
const { watch, watchLive } = presenceStreams(cleanups);

/** Waits for a stream to end and returns its status. */
async function ended(stream: Watch): Promise<StatusObject> {
  return waitFor('the stream to end', () => stream.status);
}

/** Connects a client and returns it with its session id (a closed client forgets its id). */
async function connect(node: TestNode, userId: string, clientType = 'web'): Promise<{ socket: Socket; id: string }> {
  const socket = await node.connect(userId, clientType);
  return { socket, id: socket.id! };
}

function syntheticSession(userId: string, sessionId: string): SessionRecord {
  return sessionRecord(userId, sessionId, { nodeId: 'synthetic', remoteAddress: '203.0.113.9', userAgent: 'load' });
}

describe('WatchPresence', () => {
  it('streams a user going 0 → 2 → 0 sessions, in order, with counts, sessions and reasons', async () => {
    const node = await start();
    const stream = await watchLive(node, {});

    const app = await connect(node, 'u-1', 'app');
    await eventsOf(stream, 2);
    const web = await connect(node, 'u-1', 'web');
    await eventsOf(stream, 3);
    app.socket.close();
    await eventsOf(stream, 4);
    web.socket.close();
    await eventsOf(stream, 6);
    // A marker from another user: once it has arrived, nothing more for u-1 is on the way.
    const marker = await connect(node, 'u-marker');

    expect(await eventsOf(stream, 8)).toEqual([
      [ONLINE, 'u-1', app.id, '', 1],
      [CONNECTED, 'u-1', app.id, '', 1],
      [CONNECTED, 'u-1', web.id, '', 2],
      [DISCONNECTED, 'u-1', app.id, 'client_disconnect', 1],
      [DISCONNECTED, 'u-1', web.id, 'client_disconnect', 0],
      [OFFLINE, 'u-1', web.id, 'client_disconnect', 0],
      [ONLINE, 'u-marker', marker.id, '', 1],
      [CONNECTED, 'u-marker', marker.id, '', 1],
    ]);
    const connected = stream.events[1]!;
    expect(connected.session).toMatchObject({
      userId: 'u-1',
      clientType: 'app',
      nodeId: node.app.config.server.nodeId,
      remoteAddress: expect.stringContaining('127.0.0.1'),
    });
    expect(connected.at!.getTime()).toBeGreaterThan(Date.now() - 10_000);
    expect(stream.events[2]!.session!.clientType).toBe('web');
    expect(stream.status).toBeUndefined();
  });

  it('with include_snapshot first sends the sessions already live, then SNAPSHOT_COMPLETE, then live events', async () => {
    const node = await start();
    const early = await connect(node, 'u-1', 'app');
    await connect(node, 'u-other', 'web');

    const stream = watch(node.client, { userIds: ['u-1'], includeSnapshot: true });
    expect(await eventsOf(stream, 2)).toEqual([
      [CONNECTED, 'u-1', early.id, 'snapshot', 1],
      [SNAPSHOT_COMPLETE, '', undefined, '', 0],
    ]);
    expect(stream.events[0]!.session).toMatchObject({ userId: 'u-1', clientType: 'app', nodeId: node.app.config.server.nodeId });

    const late = await connect(node, 'u-1', 'pc');
    early.socket.close();
    expect(await eventsOf(stream, 4)).toEqual([
      [CONNECTED, 'u-1', early.id, 'snapshot', 1],
      [SNAPSHOT_COMPLETE, '', undefined, '', 0],
      [CONNECTED, 'u-1', late.id, '', 2],
      [DISCONNECTED, 'u-1', early.id, 'client_disconnect', 1],
    ]);
  });

  it('with include_snapshot and nobody online sends SNAPSHOT_COMPLETE first', async () => {
    const node = await start();
    const stream = watch(node.client, { includeSnapshot: true });
    expect(await eventsOf(stream, 1)).toEqual([[SNAPSHOT_COMPLETE, '', undefined, '', 0]]);

    const client = await connect(node, 'u-1');
    expect(await eventsOf(stream, 3)).toEqual([
      [SNAPSHOT_COMPLETE, '', undefined, '', 0],
      [ONLINE, 'u-1', client.id, '', 1],
      [CONNECTED, 'u-1', client.id, '', 1],
    ]);
  });

  it('sends a snapshot far larger than the buffer whole, paced by the reader, then live events', async () => {
    const node = await start({ PUSHGATE_PRESENCE_BUFFER: '8' });
    const users = Array.from({ length: 300 }, (_, i) => `bulk-${i}`);
    for (const user of users) await node.app.registry.register(syntheticSession(user, `s-${user}`));

    const stream = watch(node.client, { includeSnapshot: true });
    const events = await eventsOf(stream, users.length + 1);
    // Snapshot pages list users in the registry's own order (the memory registry's: by user id).
    expect(events.slice(0, users.length)).toEqual([...users].sort().map((user) => [CONNECTED, user, `s-${user}`, 'snapshot', 1]));
    expect(events[users.length]).toEqual([SNAPSHOT_COMPLETE, '', undefined, '', 0]);

    await node.app.registry.unregister('bulk-0', 's-bulk-0', 'client_disconnect');
    expect((await eventsOf(stream, users.length + 3)).slice(users.length + 1)).toEqual([
      [DISCONNECTED, 'bulk-0', 's-bulk-0', 'client_disconnect', 0],
      [OFFLINE, 'bulk-0', 's-bulk-0', 'client_disconnect', 0],
    ]);
    expect(stream.status).toBeUndefined();
  });

  it('with user_ids only streams those users', async () => {
    const node = await start();
    const stream = await watchLive(node, { userIds: ['watched', 'also-watched'] });

    const other = await connect(node, 'unwatched');
    other.socket.close();
    await waitFor('the unwatched session to be gone', async () => (await node.app.registry.lookup('unwatched')).length === 0);
    const watched = await connect(node, 'watched');
    const also = await connect(node, 'also-watched');

    // The unwatched user's events happened first; had they passed the filter they would lead.
    expect(await eventsOf(stream, 4)).toEqual([
      [ONLINE, 'watched', watched.id, '', 1],
      [CONNECTED, 'watched', watched.id, '', 1],
      [ONLINE, 'also-watched', also.id, '', 1],
      [CONNECTED, 'also-watched', also.id, '', 1],
    ]);
  });

  it('a cancelled stream leaves no subscriber behind', async () => {
    const node = await start();
    const baseline = node.app.registry.subscriberCount();
    const stream = await watchLive(node, { includeSnapshot: true });
    expect(node.app.presence.size).toBe(1);

    stream.call.cancel();

    await waitFor('the registry subscription to end', () => node.app.registry.subscriberCount() === baseline);
    await waitFor('the presence stream to be forgotten', () => node.app.presence.size === 0);
    await waitFor('the cancelled status', () => stream.status);
    expect(stream.status!.code).toBe(GrpcStatus.CANCELLED);

    // The node still serves presence to others.
    const next = await watchLive(node, {});
    const client = await connect(node, 'u-1');
    expect(await eventsOf(next, 2)).toEqual([
      [ONLINE, 'u-1', client.id, '', 1],
      [CONNECTED, 'u-1', client.id, '', 1],
    ]);
  });

  it('a stream whose connection drops abruptly leaves no subscriber behind', async () => {
    const node = await start();
    const baseline = node.app.registry.subscriberCount();
    // The watcher reaches the node through a TCP relay that can cut the connection without any
    // HTTP/2 goodbye, as a crashed backend or a dead network path would.
    const relay = await startRelay(node.app.boundPorts.grpcPort);
    cleanups.push(() => relay.close());
    const remote = new TestPushClient(`127.0.0.1:${relay.port}`);
    cleanups.push(() => remote.close());
    const stream = await watchLive(node, {}, remote);
    const client = await connect(node, 'u-1');
    await eventsOf(stream, 2);
    expect(node.app.presence.size).toBe(1);

    relay.cut();

    await waitFor('the registry subscription to end', () => node.app.registry.subscriberCount() === baseline);
    await waitFor('the presence stream to be forgotten', () => node.app.presence.size === 0);
    // Presence changes after the drop are not written anywhere and break nothing.
    client.socket.close();
    await waitFor('the session to be unregistered', async () => (await node.app.registry.lookup('u-1')).length === 0);
    await waitFor('the watcher to see its stream fail', () => stream.status);
    expect(stream.status!.code).toBe(GrpcStatus.UNAVAILABLE);
  });

  it('ends a reader that stopped reading with RESOURCE_EXHAUSTED after what it already got, and keeps serving readers that keep up', async () => {
    const node = await start({ PUSHGATE_PRESENCE_BUFFER: '8' });
    const baseline = node.app.registry.subscriberCount();
    const keepingUp = await watchLive(node, {});
    const stalled = await watchLive(node, {});
    stalled.call.pause();

    // Thousands of presence changes, each given an event-loop turn, as sessions come and go on a busy node.
    const expected = await churnPresence(node, syntheticSession, () => node.app.registry.subscriberCount() === baseline + 2, 3000);

    // The server let go of the stalled stream: it no longer holds a subscription for it.
    expect(node.app.registry.subscriberCount()).toBe(baseline + 1);
    await waitFor('the stalled stream to be forgotten', () => node.app.presence.size === 1);

    // The reader that keeps up got every event, in order, and its stream is still open.
    expect(await eventsOf(keepingUp, expected.length)).toEqual(expected);
    expect(keepingUp.status).toBeUndefined();

    stalled.call.resume();
    await waitFor('the stalled stream to end', () => stalled.status, { timeoutMs: 10_000 });
    expect(stalled.status!.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(stalled.status!.details).toContain('PUSHGATE_PRESENCE_BUFFER');
    // Ended through the one error path, as unary calls are: stable code and request id in the trailers.
    expect(stalled.status!.metadata.get('pushgate-error-code')).toEqual(['presence_overflow']);
    expect(stalled.status!.metadata.get('x-request-id')).toHaveLength(1);
    // What it did get is the start of the sequence, in order and without gaps, and far from all of it.
    const got = summary(stalled.events);
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThan(expected.length);
    expect(got).toEqual(expected.slice(0, got.length));
  });

  it('writes every stream the same bytes for each event, while a stalled stream among them overflows alone', async () => {
    const node = await start({ PUSHGATE_PRESENCE_BUFFER: '8' });
    const baseline = node.app.registry.subscriberCount();
    const streams = watchRaw(node.grpcAddress, 6, cleanups);
    await waitFor('every stream subscribed', () => node.app.registry.subscriberCount() === baseline + 6);
    const [stalled, ...keepingUp] = streams as [RawWatch, ...RawWatch[]];
    stalled.call.pause();

    const expected = await churnPresence(node, syntheticSession, () => node.app.registry.subscriberCount() === baseline + 6, 3000);
    expect(node.app.registry.subscriberCount()).toBe(baseline + 5);

    await waitFor('every event on every stream that keeps up', () => keepingUp.every((s) => s.messages.length >= expected.length));
    const [first, ...others] = keepingUp.map((s) => s.messages);
    expect(summary(first!.map((bytes) => WatchPresenceResponse.decode(bytes).event!))).toEqual(expected);
    for (const messages of others) expect(messages).toEqual(first);
    for (const s of keepingUp) expect(s.status).toBeUndefined();

    stalled.call.resume();
    await waitFor('the stalled stream to end', () => stalled.status, { timeoutMs: 10_000 });
    expect(stalled.status!.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    // What it did get is, byte for byte, the start of what the others got.
    expect(stalled.messages.length).toBeGreaterThan(0);
    expect(stalled.messages).toEqual(first!.slice(0, stalled.messages.length));
  });

  it('reports sessions closed by DisconnectSessions with reason kicked', async () => {
    const node = await start();
    const app = await connect(node, 'u-1', 'app');
    const web = await connect(node, 'u-1', 'web');
    const notices: unknown[] = [];
    app.socket.on('pushgate:disconnect', (notice: unknown) => notices.push(notice));
    const stream = await watchLive(node, { userIds: ['u-1'] });

    const one = await node.client.disconnectSessions({ userId: 'u-1', sessionIds: [app.id], reason: 'logged in elsewhere' });
    expect(one.disconnected.map((s) => s.sessionId)).toEqual([app.id]);
    expect(await eventsOf(stream, 1)).toEqual([[DISCONNECTED, 'u-1', app.id, 'kicked', 1]]);
    await waitFor('the kicked client to hear why', () => notices.length === 1);
    expect(notices).toEqual([{ reason: 'logged in elsewhere' }]);

    await node.client.disconnectSessions({ userId: 'u-1' });
    expect(await eventsOf(stream, 3)).toEqual([
      [DISCONNECTED, 'u-1', app.id, 'kicked', 1],
      [DISCONNECTED, 'u-1', web.id, 'kicked', 0],
      [OFFLINE, 'u-1', web.id, 'kicked', 0],
    ]);
  });

  it('reports a client that stops answering pings with reason heartbeat_timeout', async () => {
    const node = await start({ PUSHGATE_PING_INTERVAL_MS: '200', PUSHGATE_PING_TIMEOUT_MS: '200' });
    const stream = await watchLive(node, { userIds: ['frozen', 'healthy'] });
    const healthy = await connect(node, 'healthy');

    // A real client in its own process, frozen with SIGSTOP once connected: its TCP connection stays
    // open, but nothing answers the server's pings any more.
    const frozen = await startFrozenableClient(node.httpUrl, await signToken('frozen'));
    cleanups.push(() => frozen.kill());
    await eventsOf(stream, 4);
    frozen.freeze();

    await waitFor('the frozen session to time out', () => stream.events.length >= 6, { timeoutMs: 5000 });
    expect(summary(stream.events)).toEqual([
      [ONLINE, 'healthy', healthy.id, '', 1],
      [CONNECTED, 'healthy', healthy.id, '', 1],
      [ONLINE, 'frozen', frozen.sessionId, '', 1],
      [CONNECTED, 'frozen', frozen.sessionId, '', 1],
      [DISCONNECTED, 'frozen', frozen.sessionId, 'heartbeat_timeout', 0],
      [OFFLINE, 'frozen', frozen.sessionId, 'heartbeat_timeout', 0],
    ]);
    // The client that answers its pings stays connected through several ping rounds.
    expect(healthy.socket.connected).toBe(true);
    expect((await node.app.registry.lookup('healthy')).map((s) => s.sessionId)).toEqual([healthy.id]);
  });
});

describe('WatchPresence with resume_after', () => {
  it('a watcher that reconnects with the last cursor it saw gets exactly the events it missed, in order, then live ones', async () => {
    const node = await start();
    const first = await watchLive(node, {});
    const one = await connect(node, 'u-1');
    await eventsOf(first, 2);
    const last = first.events[1]!.cursor;
    await stopWatching(node, first);

    // While no stream is open: u-2 arrives, u-1 leaves.
    const two = await connect(node, 'u-2', 'app');
    one.socket.close();
    await waitFor('u-1 to be gone', async () => (await node.app.registry.lookup('u-1')).length === 0);

    const resumed = watch(node.client, { resumeAfter: last });
    const onlyTwo = watch(node.client, { userIds: ['u-2'], resumeAfter: last });
    const missed: Summary[] = [
      [ONLINE, 'u-2', two.id, '', 1],
      [CONNECTED, 'u-2', two.id, '', 1],
      [DISCONNECTED, 'u-1', one.id, 'client_disconnect', 0],
      [OFFLINE, 'u-1', one.id, 'client_disconnect', 0],
    ];
    expect(await eventsOf(resumed, 4)).toEqual(missed);

    const three = await connect(node, 'u-3');
    const twoAgain = await connect(node, 'u-2', 'pc');
    expect(await eventsOf(resumed, 7)).toEqual([
      ...missed,
      [ONLINE, 'u-3', three.id, '', 1],
      [CONNECTED, 'u-3', three.id, '', 1],
      [CONNECTED, 'u-2', twoAgain.id, '', 2],
    ]);
    // user_ids filters the missed events as it does live ones.
    expect(await eventsOf(onlyTwo, 3)).toEqual([
      [ONLINE, 'u-2', two.id, '', 1],
      [CONNECTED, 'u-2', two.id, '', 1],
      [CONNECTED, 'u-2', twoAgain.id, '', 2],
    ]);
    // Each event carries its own cursor.
    const cursors = [last, ...resumed.events.map((e) => e.cursor)];
    expect(new Set(cursors).size).toBe(cursors.length);
    expect(resumed.status).toBeUndefined();
  });

  it('a resume that catches up more than a page while sessions keep changing gets every event once, in order', async () => {
    const node = await start();
    const registry = node.app.registry;
    const cursor = await registry.position();
    const expected: Summary[] = [];
    let cycles = 0;
    /** A session comes and goes; cycles may overlap, so each change is expected as it is made. */
    async function cycle(): Promise<void> {
      const [userId, sessionId] = [`load-${cycles}`, `s-${cycles}`];
      cycles++;
      await registry.register(syntheticSession(userId, sessionId));
      expected.push([ONLINE, userId, sessionId, '', 1], [CONNECTED, userId, sessionId, '', 1]);
      await nextTurn();
      await registry.unregister(userId, sessionId, 'client_disconnect');
      expected.push([DISCONNECTED, userId, sessionId, 'client_disconnect', 0], [OFFLINE, userId, sessionId, 'client_disconnect', 0]);
      await nextTurn();
    }
    for (let i = 0; i < 200; i++) await cycle(); // 800 events: more than one page of the feed

    // Changes land during every read of the feed, after the read and before the stream has its
    // result, as they can with a registry over the network; the last read is no exception.
    const readAfter = registry.readAfter.bind(registry);
    let reading = 0;
    registry.readAfter = async (after, limit) => {
      reading++;
      const events = await readAfter(after, limit);
      await cycle();
      reading--;
      return events;
    };
    const resumed = watch(node.client, { resumeAfter: cursor });
    // More changes while the stream starts and catches up, then once it is live.
    for (let i = 0; i < 50; i++) await cycle();
    await waitFor('the stream to catch up', () => reading === 0 && resumed.events.length >= expected.length);
    for (let i = 0; i < 5; i++) await cycle();

    expect(await eventsOf(resumed, expected.length)).toEqual(expected);
    expect(resumed.status).toBeUndefined();
  });

  it('snapshot events and SNAPSHOT_COMPLETE carry the cursor a later resume continues from', async () => {
    const node = await start();
    const early = await connect(node, 'u-1', 'app');
    const snapshot = watch(node.client, { includeSnapshot: true });
    expect(await eventsOf(snapshot, 2)).toEqual([
      [CONNECTED, 'u-1', early.id, 'snapshot', 1],
      [SNAPSHOT_COMPLETE, '', undefined, '', 0],
    ]);
    const [connected, complete] = snapshot.events;
    expect(complete!.cursor).not.toBe('');
    expect(connected!.cursor).toBe(complete!.cursor);
    await stopWatching(node, snapshot);

    const late = await connect(node, 'u-2');
    early.socket.close();
    await waitFor('u-1 to be gone', async () => (await node.app.registry.lookup('u-1')).length === 0);

    const resumed = watch(node.client, { resumeAfter: complete!.cursor });
    expect(await eventsOf(resumed, 4)).toEqual([
      [ONLINE, 'u-2', late.id, '', 1],
      [CONNECTED, 'u-2', late.id, '', 1],
      [DISCONNECTED, 'u-1', early.id, 'client_disconnect', 0],
      [OFFLINE, 'u-1', early.id, 'client_disconnect', 0],
    ]);
  });

  it('a cursor from before the node restarted fails with FAILED_PRECONDITION naming where to resume instead', async () => {
    const before = await start();
    const stream = await watchLive(before, {});
    await connect(before, 'u-1');
    await eventsOf(stream, 2);
    const last = stream.events[1]!.cursor;
    await before.stop();

    const after = await start();
    const client = await connect(after, 'u-1');
    const stale = watch(after.client, { resumeAfter: last });
    const status = await ended(stale);
    expect(status.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(status.metadata.get('pushgate-error-code')).toEqual(['cursor_expired']);
    const [oldest] = status.metadata.get('pushgate-oldest-cursor');
    expect(status.details).toContain(`the oldest cursor still held is ${String(oldest)}`);
    expect(stale.events).toEqual([]);
    await waitFor('the refused stream to be forgotten', () => after.app.presence.size === 0 && after.app.registry.subscriberCount() === 0);

    // The restarted node names its own start: resuming there yields everything since the restart.
    const fresh = watch(after.client, { resumeAfter: String(oldest) });
    expect(await eventsOf(fresh, 2)).toEqual([
      [ONLINE, 'u-1', client.id, '', 1],
      [CONNECTED, 'u-1', client.id, '', 1],
    ]);
  });

  it('a cursor older than the retained events fails with FAILED_PRECONDITION naming the oldest cursor held, from which resuming works', async () => {
    const node = await start({ PUSHGATE_PRESENCE_RETENTION: '5' });
    const first = await watchLive(node, {});
    await node.app.registry.register(syntheticSession('u-0', 's-0'));
    await eventsOf(first, 2);
    const last = first.events[1]!.cursor;
    await stopWatching(node, first);
    // Six events while away: one more than the node keeps.
    for (const i of [1, 2, 3]) await node.app.registry.register(syntheticSession(`u-${i}`, `s-${i}`));

    const stale = watch(node.client, { resumeAfter: last });
    const status = await ended(stale);
    expect(status.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(status.metadata.get('pushgate-error-code')).toEqual(['cursor_expired']);
    const [oldest] = status.metadata.get('pushgate-oldest-cursor');
    expect(typeof oldest).toBe('string');
    expect(status.details).toContain('resume_after');
    expect(status.details).toContain(`the oldest cursor still held is ${String(oldest)}`);
    expect(stale.events).toEqual([]);

    const resumed = watch(node.client, { resumeAfter: String(oldest) });
    const held: Summary[] = [
      [CONNECTED, 'u-1', 's-1', '', 1],
      [ONLINE, 'u-2', 's-2', '', 1],
      [CONNECTED, 'u-2', 's-2', '', 1],
      [ONLINE, 'u-3', 's-3', '', 1],
      [CONNECTED, 'u-3', 's-3', '', 1],
    ];
    expect(await eventsOf(resumed, 5)).toEqual(held);
    await node.app.registry.unregister('u-1', 's-1', 'kicked');
    expect(await eventsOf(resumed, 7)).toEqual([...held, [DISCONNECTED, 'u-1', 's-1', 'kicked', 0], [OFFLINE, 'u-1', 's-1', 'kicked', 0]]);
  });

  it('refuses include_snapshot together with resume_after with INVALID_ARGUMENT naming both', async () => {
    const node = await start();
    const baseline = node.app.registry.subscriberCount();
    const cursor = await node.app.registry.position();
    const stream = watch(node.client, { includeSnapshot: true, resumeAfter: cursor });
    const status = await ended(stream);
    expect(status.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(status.details).toContain('include_snapshot');
    expect(status.details).toContain('resume_after');
    expect(stream.events).toEqual([]);
    expect(node.app.registry.subscriberCount()).toBe(baseline);
    expect(node.app.presence.size).toBe(0);
  });

  it('refuses a resume_after that is not a cursor with INVALID_ARGUMENT naming resume_after, and keeps no stream', async () => {
    const node = await start();
    const baseline = node.app.registry.subscriberCount();
    await connect(node, 'u-1');
    for (const bad of ['garbage', 'x'.repeat(1000)]) {
      const stream = watch(node.client, { resumeAfter: bad });
      const status = await ended(stream);
      expect(status.code).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(status.details).toContain('resume_after');
      expect(stream.events).toEqual([]);
    }
    await waitFor(
      'the refused streams to be forgotten',
      () => node.app.presence.size === 0 && node.app.registry.subscriberCount() === baseline,
    );
  });
});

/** A TCP relay to the node whose connections can be cut at once (RST, no protocol goodbye). */
async function startRelay(targetPort: number): Promise<{ port: number; cut(): void; close(): Promise<void> }> {
  const sockets = new Set<TcpSocket>();
  const server: TcpServer = createServer((inbound) => {
    const outbound = tcpConnect(targetPort, '127.0.0.1');
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        sockets.delete(socket);
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      for (const socket of sockets) socket.resetAndDestroy();
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Runs a Socket.IO v4 client in a child process that prints its session id once connected. */
async function startFrozenableClient(httpUrl: string, token: string): Promise<{ sessionId: string; freeze(): void; kill(): void }> {
  const script = `
    import { io } from 'socket.io-client';
    const socket = io(process.env.URL, { auth: { token: process.env.TOKEN, clientType: 'app' }, transports: ['websocket'], reconnection: false });
    socket.on('connect', () => process.stdout.write(socket.id + '\\n'));
    socket.on('connect_error', (err) => { process.stderr.write(String(err) + '\\n'); process.exit(3); });
  `;
  const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: process.cwd(),
    env: { ...process.env, URL: httpUrl, TOKEN: token },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    const sessionId = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child.once('exit', (code) => reject(new Error(`client process exited with ${code}: ${stderr}`)));
    });
    return { sessionId, freeze: () => child.kill('SIGSTOP'), kill };
  } catch (err) {
    kill();
    throw err;
  }
}
