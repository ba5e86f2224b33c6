import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { Server, type Socket as ServerSocket } from 'socket.io';
import { type Socket as ClientSocket, io } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { TokenExpiry, type TokenHolder } from '../../src/edge/token-expiry.js';
import { TokenVerifier, type VerifiedToken } from '../../src/edge/token-verifier.js';
import { signToken, TEST_SECRET } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

/**
 * TokenExpiry on a real Socket.IO server and clients, with the real verifier: one clock and one
 * refresh listener for every socket. Sessions are indexed by socket id and unwatched when their
 * socket closes, as src/edge/socket-edge.ts does. A slowed-down verifier covers a refresh still
 * being verified when its socket closes: the case the fuzz test found leaking a timer (and the
 * closed socket with it) until the fresh token's exp.
 */

const VERIFY_DELAY_MS = 200;
const real = new TokenVerifier({
  jwtSecret: TEST_SECRET,
  jwtPublicKey: undefined,
  jwtIssuer: undefined,
  jwtAudience: undefined,
  secretGenerated: false,
  insecureQueryAuth: false,
  maxTokenTtlSeconds: 3600,
});
let verifyDelayMs = 0;
const verifier = {
  verify: async (token: string): Promise<VerifiedToken> => {
    if (verifyDelayMs > 0) await sleep(verifyDelayMs);
    return real.verify(token);
  },
} as TokenVerifier;

interface Session extends TokenHolder {
  readonly socket: ServerSocket;
}

let server: Server;
let url: string;
const sessions = new Map<string, Session>();
const expired: string[] = [];
const expiry = new TokenExpiry<Session>({
  verifier,
  sessionOf: (socket) => sessions.get(socket.id),
  onExpired: (session) => {
    expired.push(session.socket.id);
    session.socket.disconnect(true);
  },
  log: pino({ level: 'silent' }),
});
const clients: ClientSocket[] = [];

beforeAll(async () => {
  const http = createServer();
  server = new Server(http);
  server.on('connection', (socket) => {
    const session: Session = { socket, record: { userId: String(socket.handshake.auth.userId) }, expiryIndex: -1 };
    sessions.set(socket.id, session);
    expiry.watch(session, Number(socket.handshake.auth.expiresAtMs));
    socket.on('disconnect', () => {
      expiry.unwatch(session);
      sessions.delete(socket.id);
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterEach(async () => {
  verifyDelayMs = 0;
  for (const client of clients.splice(0)) client.close();
  await waitFor('every socket to be unwatched', () => sessions.size === 0 && expiry.size === 0);
  expired.length = 0;
});

afterAll(async () => {
  expiry.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function connect(userId: string, expiresAtMs: number): Promise<{ client: ClientSocket; session: Session }> {
  const client = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { userId, expiresAtMs } });
  clients.push(client);
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('connect_error', reject);
  });
  const session = await waitFor('the server to watch the socket', () => sessions.get(client.id!));
  return { client, session };
}

it('closes a session at its exp, and only that one', async () => {
  const soon = await connect('u1', Date.now() + 600);
  const later = await connect('u2', Date.now() + 60_000);
  expect(expiry.size).toBe(2);
  await waitFor('the first socket to close', () => soon.client.disconnected);
  expect(expired).toEqual([soon.session.socket.id]);
  expect(soon.session.socket.listeners('pushgate:refresh')).toEqual([]);
  expect(later.client.connected).toBe(true);
  expect(expiry.size).toBe(1);
});

it('moves the expiry on a refresh for the same user, and keeps it on a refused one', async () => {
  const { client, session } = await connect('u1', Date.now() + 1500);
  const atFirst = expiry.expiryOf(session);
  expect(await client.emitWithAck('pushgate:refresh', await signToken('someone-else'))).toMatchObject({
    ok: false,
    code: 'token_claims_invalid',
  });
  expect(await client.emitWithAck('pushgate:refresh', 'garbage')).toMatchObject({ ok: false, code: 'token_malformed' });
  expect(await client.emitWithAck('pushgate:refresh', '')).toMatchObject({ ok: false, code: 'token_missing' });
  expect(expiry.expiryOf(session)).toBe(atFirst);
  const answer = (await client.emitWithAck('pushgate:refresh', await signToken('u1', { expiresIn: 3600 }))) as {
    ok: boolean;
    expiresAt: string;
  };
  expect(answer.ok).toBe(true);
  expect(expiry.expiryOf(session)).toBe(new Date(answer.expiresAt).getTime());
  // Past the first token's exp: still open.
  await sleep(2000);
  expect(client.connected).toBe(true);
  expect(expired).toEqual([]);
});

it('shares one refresh listener among all sockets, and removes it when a socket closes', async () => {
  const a = await connect('u1', Date.now() + 60_000);
  const b = await connect('u2', Date.now() + 60_000);
  const [listenerA] = a.session.socket.listeners('pushgate:refresh');
  expect(listenerA).toBeTypeOf('function');
  expect(b.session.socket.listeners('pushgate:refresh')).toEqual([listenerA]);
  a.client.close();
  await waitFor('the server to see the close', () => a.session.socket.disconnected);
  expect(a.session.socket.listeners('pushgate:refresh')).toEqual([]);
  expect(expiry.expiryOf(a.session)).toBeUndefined();
  expect(expiry.size).toBe(1);
});

it('a refresh still being verified when the socket closes schedules nothing afterwards', async () => {
  verifyDelayMs = VERIFY_DELAY_MS;
  const { client, session } = await connect('u1', Date.now() + 60_000);
  // A fresh token that expires within two seconds, sent just before the client goes away.
  client.emit('pushgate:refresh', await signToken('u1', { expiresIn: 2 }), () => {});
  await sleep(50);
  client.close();
  await waitFor('the server to see the close', () => session.socket.disconnected);

  // Past the refresh's verification and past its token's exp: nothing may fire for a closed socket.
  await sleep(VERIFY_DELAY_MS + 2200);
  expect(expiry.size).toBe(0);
  expect(expiry.expiryOf(session)).toBeUndefined();
  expect(expired).toEqual([]);
});
