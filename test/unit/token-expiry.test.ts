import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { Server, type Socket as ServerSocket } from 'socket.io';
import { type Socket as ClientSocket, io } from 'socket.io-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { watchTokenExpiry } from '../../src/edge/token-expiry.js';
import { TokenVerifier, type VerifiedToken } from '../../src/edge/token-verifier.js';
import { signToken, TEST_SECRET } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

/**
 * watchTokenExpiry on a real Socket.IO server and client. The verifier is the real one, slowed
 * down so that a refresh is still being verified when its socket closes: the case the fuzz test
 * found leaking a timer (and the closed socket with it) until the fresh token's exp.
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
const slowVerifier = {
  verify: async (token: string): Promise<VerifiedToken> => {
    await sleep(VERIFY_DELAY_MS);
    return real.verify(token);
  },
} as TokenVerifier;

let server: Server;
let url: string;
const connected: ServerSocket[] = [];

beforeAll(async () => {
  const http = createServer();
  server = new Server(http);
  server.on('connection', (socket) => connected.push(socket));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

it('a refresh still being verified when the socket closes schedules nothing afterwards', async () => {
  const client: ClientSocket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true });
  await waitFor('the server socket', () => connected.length === 1);
  const socket = connected[0]!;
  let expired = 0;
  const stop = watchTokenExpiry(socket, {
    userId: 'u1',
    expiresAtMs: Date.now() + 60_000,
    verifier: slowVerifier,
    onExpired: () => expired++,
    log: pino({ level: 'silent' }),
  });
  socket.on('disconnect', stop);

  // A fresh token that expires within two seconds, sent just before the client goes away.
  client.emit('pushgate:refresh', await signToken('u1', { expiresIn: 2 }), () => {});
  await sleep(50);
  client.close();
  await waitFor('the server to see the close', () => socket.disconnected);

  // Past the refresh's verification and past its token's exp: nothing may fire for a closed socket.
  await sleep(VERIFY_DELAY_MS + 2200);
  expect(expired).toBe(0);
});
