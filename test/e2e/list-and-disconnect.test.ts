import { status } from '@grpc/grpc-js';
import { io, type Socket } from 'socket.io-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeliveryStatus } from '../../src/gen/pushgate/v1/push_service.js';
import type { Session } from '../../src/gen/pushgate/v1/session.js';
import { grpcError } from '../support/grpc-client.js';
import { startNode, type TestNode } from '../support/node.js';
import { signToken } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

const NODE_ID = 'edge-test-1';

let node: TestNode;
/** Clients opened here rather than through node.connect; closed after each test. */
const extraClients: Socket[] = [];

beforeEach(async () => {
  node = await startNode({ PUSHGATE_NODE_ID: NODE_ID });
});
afterEach(async () => {
  for (const socket of extraClients.splice(0)) socket.close();
  await node.stop();
});

/** A v4 client that sends its own User-Agent header, as a desktop or mobile app would. */
async function connectWithUserAgent(userId: string, clientType: string, userAgent: string): Promise<Socket> {
  const socket = io(node.httpUrl, {
    auth: { token: await signToken(userId), clientType },
    extraHeaders: { 'User-Agent': userAgent },
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  extraClients.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  return socket;
}

async function sessionIds(userId: string, clientTypes: string[] = []): Promise<string[]> {
  const { sessions } = await node.client.listSessions({ userId, clientTypes });
  return sessions.map((s) => s.sessionId);
}

/** What a client saw around a server-side close: the notice, then the disconnect, in order. */
interface CloseLog {
  readonly events: { event: string; payload: unknown }[];
  readonly id: string;
  closed(): boolean;
}

function watchClose(socket: Socket): CloseLog {
  const events: { event: string; payload: unknown }[] = [];
  socket.on('pushgate:disconnect', (payload: unknown) => events.push({ event: 'pushgate:disconnect', payload }));
  socket.on('disconnect', (reason: string) => events.push({ event: 'disconnect', payload: reason }));
  return { events, id: socket.id!, closed: () => events.some((e) => e.event === 'disconnect') };
}

function ids(sessions: readonly Session[]): string[] {
  return sessions.map((s) => s.sessionId).sort();
}

describe('ListSessions', () => {
  it('follows a user through connects and disconnects: 0, 3, 2, 0 sessions, oldest first', async () => {
    expect(await sessionIds('41')).toEqual([]);

    const app = await node.connect('41', 'app');
    const pc = await node.connect('41', 'pc');
    const web = await node.connect('41', 'web');
    const all = [app.id!, pc.id!, web.id!];
    await waitFor('3 sessions listed', async () => (await sessionIds('41')).length === 3);
    expect(await sessionIds('41')).toEqual(all);

    pc.close();
    await waitFor('the closed pc session to leave the list', async () => (await sessionIds('41')).length === 2);
    expect(await sessionIds('41')).toEqual([all[0], all[2]]);

    app.close();
    web.close();
    await waitFor('no sessions left', async () => (await sessionIds('41')).length === 0);
    expect(await node.client.listSessions({ userId: '41' })).toEqual({ sessions: [], nextPageToken: '' });
  });

  it('lists only the given user, and only the given client types (case-insensitive)', async () => {
    const app = await node.connect('42', 'app');
    const pc = await node.connect('42', 'pc');
    const web = await node.connect('42', 'web');
    const stranger = await node.connect('42-other', 'web');

    expect(await sessionIds('42')).toEqual([app.id, pc.id, web.id]);
    expect(await sessionIds('42-other')).toEqual([stranger.id]);
    expect(await sessionIds('42', ['WEB'])).toEqual([web.id]);
    expect(await sessionIds('42', ['web', 'App'])).toEqual([app.id, web.id]);
    expect(await sessionIds('42-other', ['pc'])).toEqual([]);

    const err = await grpcError(node.client.listSessions({ userId: '42', clientTypes: ['tablet'] }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/client_types\[0\].*tablet/);
  });

  it('describes each session: ids, client type, node, times, address and user agent', async () => {
    const before = Date.now();
    const desktop = await connectWithUserAgent('43', 'PC', 'PushgateDesktop/3.1 (Windows NT 10.0)');
    const plain = await node.connect('43', 'web');
    const after = Date.now();

    const { sessions } = await node.client.listSessions({ userId: '43' });
    expect(sessions).toHaveLength(2);
    const [first, second] = sessions as [Session, Session];

    expect(first.sessionId).toBe(desktop.id);
    expect(first.userId).toBe('43');
    expect(first.clientType).toBe('pc');
    expect(first.userAgent).toBe('PushgateDesktop/3.1 (Windows NT 10.0)');
    expect(second.sessionId).toBe(plain.id);
    expect(second.clientType).toBe('web');
    // This client sends no User-Agent header at all.
    expect(second.userAgent).toBe('');

    // A User-Agent is stored cut to 256 characters, so replies stay small whatever clients send.
    await connectWithUserAgent('43', 'app', `Bloated/1.0 ${'x'.repeat(8000)}`);
    const bloated = (await node.client.listSessions({ userId: '43', clientTypes: ['app'] })).sessions[0]!;
    expect(bloated.userAgent).toBe(`Bloated/1.0 ${'x'.repeat(244)}`);

    for (const session of sessions) {
      expect(session.nodeId).toBe(NODE_ID);
      expect(session.remoteAddress).toMatch(/^(::ffff:)?127\.0\.0\.1$/);
      expect(session.connectedAt).toBeInstanceOf(Date);
      expect(session.lastSeenAt).toBeInstanceOf(Date);
      expect(session.connectedAt!.getTime()).toBeGreaterThanOrEqual(before);
      expect(session.connectedAt!.getTime()).toBeLessThanOrEqual(after);
      expect(session.lastSeenAt!.getTime()).toBeGreaterThanOrEqual(session.connectedAt!.getTime());
      expect(session.lastSeenAt!.getTime()).toBeLessThanOrEqual(Date.now());
    }
    expect(first.connectedAt!.getTime()).toBeLessThanOrEqual(second.connectedAt!.getTime());
  });

  it('pages a big user: page_size, next_page_token, and the server maximum when page_size is 0 or larger', async () => {
    const sockets = [];
    for (let i = 0; i < 5; i++) sockets.push(await node.connect('44', 'web'));
    const expected = sockets.map((s) => s.id);

    const seen: string[] = [];
    let pageToken = '';
    const sizes: number[] = [];
    do {
      const page = await node.client.listSessions({ userId: '44', pageSize: 2, pageToken });
      sizes.push(page.sessions.length);
      seen.push(...page.sessions.map((s) => s.sessionId));
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    expect(sizes).toEqual([2, 2, 1]);
    // Each session exactly once (two connecting in the same millisecond may swap places).
    expect([...seen].sort()).toEqual([...expected].sort());

    // No page_size: everything up to the server maximum, in one page.
    expect(await node.client.listSessions({ userId: '44' })).toMatchObject({ nextPageToken: '' });
    const capped = await startNode({ PUSHGATE_MAX_LIST_PAGE_SIZE: '3' });
    try {
      for (let i = 0; i < 4; i++) await capped.connect('45', 'app');
      for (const pageSize of [0, 500]) {
        const page = await capped.client.listSessions({ userId: '45', pageSize });
        expect(page.sessions).toHaveLength(3);
        expect(page.nextPageToken).not.toBe('');
      }
    } finally {
      await capped.stop();
    }
  });

  it('refuses a negative page_size and a foreign page_token with INVALID_ARGUMENT naming the field', async () => {
    await node.connect('46', 'web');
    await node.connect('46', 'web');
    const { nextPageToken } = await node.client.listSessions({ userId: '46', pageSize: 1 });

    const negative = await grpcError(node.client.listSessions({ userId: '46', pageSize: -1 }));
    expect([negative.code, negative.details]).toEqual([status.INVALID_ARGUMENT, expect.stringContaining('page_size')]);
    for (const [userId, pageToken] of [
      ['46', 'garbage'],
      ['47', nextPageToken],
    ]) {
      const err = await grpcError(node.client.listSessions({ userId, pageToken }));
      expect([err.code, err.details]).toEqual([status.INVALID_ARGUMENT, expect.stringContaining('page_token')]);
    }
  });

  it('refuses an empty user_id with INVALID_ARGUMENT naming user_id', async () => {
    const err = await grpcError(node.client.listSessions({ userId: '' }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/user_id/);
  });
});

describe('DisconnectSessions', () => {
  it('kicks one device: only it gets the notice and is closed, and it is gone from the list at once', async () => {
    const app = await node.connect('51', 'app');
    const pc = await node.connect('51', 'pc');
    const web = await node.connect('51', 'web');
    const logs = [app, pc, web].map(watchClose);
    const [appLog, pcLog, webLog] = logs as [CloseLog, CloseLog, CloseLog];

    const response = await node.client.disconnectSessions({ userId: '51', sessionIds: [pcLog.id], reason: 'signed in on another pc' });

    expect(response.disconnected).toHaveLength(1);
    const kicked = response.disconnected[0]!;
    expect(kicked.sessionId).toBe(pcLog.id);
    expect(kicked.userId).toBe('51');
    expect(kicked.clientType).toBe('pc');
    expect(kicked.nodeId).toBe(NODE_ID);
    // Already out of the registry when the call returns: no polling.
    expect(await sessionIds('51')).toEqual([appLog.id, webLog.id]);

    await waitFor('the kicked client to see its disconnect', () => pcLog.closed());
    expect(pcLog.events).toEqual([
      { event: 'pushgate:disconnect', payload: { reason: 'signed in on another pc' } },
      // A server-side close: a Socket.IO client does not reconnect by itself after this reason.
      { event: 'disconnect', payload: 'io server disconnect' },
    ]);
    expect(pc.connected).toBe(false);

    // The other devices were left alone and still take pushes.
    for (const socket of [app, web]) socket.on('notice', (_data: unknown, ack: (reply: unknown) => void) => ack('here'));
    const push = await node.client.pushToUser({ userId: '51', event: 'notice', data: 1, ackTimeoutMs: 2000 });
    expect(push.deliveries.map((d) => [d.session!.sessionId, d.status]).sort()).toEqual(
      [
        [appLog.id, DeliveryStatus.DELIVERY_STATUS_ACKED],
        [webLog.id, DeliveryStatus.DELIVERY_STATUS_ACKED],
      ].sort(),
    );
    expect(app.connected && web.connected).toBe(true);
    expect(appLog.events).toEqual([]);
    expect(webLog.events).toEqual([]);
  });

  it('logs a user out everywhere when no session_ids are given, leaving other users alone', async () => {
    const mine = [await node.connect('52', 'app'), await node.connect('52', 'pc'), await node.connect('52', 'web')];
    const theirs = [await node.connect('52-other', 'app'), await node.connect('52-other', 'web')];
    const myLogs = mine.map(watchClose);
    const theirLogs = theirs.map(watchClose);

    const response = await node.client.disconnectSessions({ userId: '52', reason: 'password changed' });

    expect(ids(response.disconnected)).toEqual(myLogs.map((l) => l.id).sort());
    expect(response.disconnected.every((s) => s.userId === '52')).toBe(true);
    expect(await sessionIds('52')).toEqual([]);
    expect(await sessionIds('52-other')).toEqual(theirLogs.map((l) => l.id));

    await waitFor('all three clients of the user to be closed', () => myLogs.every((l) => l.closed()));
    for (const log of myLogs) {
      expect(log.events.map((e) => e.event)).toEqual(['pushgate:disconnect', 'disconnect']);
      expect(log.events[0]!.payload).toEqual({ reason: 'password changed' });
    }
    expect(theirs.every((s) => s.connected)).toBe(true);
    expect(theirLogs.every((l) => l.events.length === 0)).toBe(true);

    // Nothing left to close the second time.
    expect(await node.client.disconnectSessions({ userId: '52' })).toEqual({ disconnected: [] });
  });

  it('closes only the client types given in client_types', async () => {
    const app = await node.connect('53', 'app');
    const pc = await node.connect('53', 'pc');
    const web = await node.connect('53', 'web');
    const [appLog, pcLog, webLog] = [app, pc, web].map(watchClose) as [CloseLog, CloseLog, CloseLog];

    const response = await node.client.disconnectSessions({ userId: '53', clientTypes: ['APP', 'pc'] });

    expect(ids(response.disconnected)).toEqual([appLog.id, pcLog.id].sort());
    expect(await sessionIds('53')).toEqual([webLog.id]);
    await waitFor('app and pc clients to be closed', () => appLog.closed() && pcLog.closed());
    expect(web.connected).toBe(true);
    expect(webLog.events).toEqual([]);

    // session_ids and client_types together: both must match.
    const none = await node.client.disconnectSessions({ userId: '53', sessionIds: [webLog.id], clientTypes: ['app'] });
    expect(none.disconnected).toEqual([]);
    expect(await sessionIds('53')).toEqual([webLog.id]);

    const err = await grpcError(node.client.disconnectSessions({ userId: '53', clientTypes: ['watch'] }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/client_types/);
    expect(web.connected).toBe(true);
  });

  it('tells the client the reason "kicked" when the request gives none', async () => {
    const socket = await node.connect('54', 'web');
    const log = watchClose(socket);
    const response = await node.client.disconnectSessions({ userId: '54', sessionIds: [log.id] });
    expect(ids(response.disconnected)).toEqual([log.id]);
    await waitFor('the client to be closed', () => log.closed());
    expect(log.events[0]).toEqual({ event: 'pushgate:disconnect', payload: { reason: 'kicked' } });
  });

  it('closes nothing for an unknown session id, or a session id of another user', async () => {
    const mine = await node.connect('55', 'app');
    const other = await node.connect('55-other', 'app');
    const [myLog, otherLog] = [mine, other].map(watchClose) as [CloseLog, CloseLog];

    expect(await node.client.disconnectSessions({ userId: '55', sessionIds: ['no-such-session'] })).toEqual({ disconnected: [] });
    expect(await node.client.disconnectSessions({ userId: '55', sessionIds: [otherLog.id] })).toEqual({ disconnected: [] });

    expect(await sessionIds('55')).toEqual([myLog.id]);
    expect(await sessionIds('55-other')).toEqual([otherLog.id]);
    // Prove the clients are alive and received no notice: a push still reaches and is acked by both.
    for (const socket of [mine, other]) socket.on('notice', (_data: unknown, ack: (reply: unknown) => void) => ack(null));
    for (const userId of ['55', '55-other']) {
      const push = await node.client.pushToUser({ userId, event: 'notice', ackTimeoutMs: 2000 });
      expect(push.acked).toBe(1);
    }
    expect(myLog.events).toEqual([]);
    expect(otherLog.events).toEqual([]);
  });

  it('refuses an empty user_id or an empty session id with INVALID_ARGUMENT naming the field', async () => {
    const socket = await node.connect('56', 'app');
    const log = watchClose(socket);

    const noUser = await grpcError(node.client.disconnectSessions({ userId: '', sessionIds: [log.id] }));
    expect(noUser.code).toBe(status.INVALID_ARGUMENT);
    expect(noUser.details).toMatch(/user_id/);

    const emptyId = await grpcError(node.client.disconnectSessions({ userId: '56', sessionIds: [log.id, ''] }));
    expect(emptyId.code).toBe(status.INVALID_ARGUMENT);
    expect(emptyId.details).toMatch(/session_ids\[1\]/);

    expect(await sessionIds('56')).toEqual([log.id]);
    expect(socket.connected).toBe(true);
    expect(log.events).toEqual([]);
  });
});
