import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { SignJWT } from 'jose';
import { io, type Socket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryStatus } from '../../src/gen/pushgate/v1/push_service.js';
import { createLogger } from '../../src/logger.js';
import { startNode, type TestNode } from '../support/node.js';
import { type ConnectOptions, connectClient, connectError } from '../support/socket-client.js';
import { signToken, TEST_SECRET } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

/** The Socket.IO v2 client (CommonJS, no type declarations), as the legacy netty-socketio apps use it. */
interface V2Socket {
  readonly id: string;
  readonly connected: boolean;
  on(event: string, listener: (...args: never[]) => void): V2Socket;
  emit(event: string, ...args: unknown[]): V2Socket;
  close(): void;
}
const ioV2 = createRequire(import.meta.url)('socket.io-client-v2') as (url: string, options?: object) => V2Socket;

const OTHER_SECRET = 'another-secret-that-is-also-32-characters-or-more';

const nodes: TestNode[] = [];
const clients: { close(): void }[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(nodes.splice(0).map((node) => node.stop()));
});

async function node(env: Record<string, string> = {}, logger?: Parameters<typeof startNode>[1]): Promise<TestNode> {
  const started = await startNode(env, logger);
  nodes.push(started);
  return started;
}

async function connect(n: TestNode, options: ConnectOptions): Promise<Socket> {
  const socket = await connectClient(n.httpUrl, options);
  clients.push(socket);
  return socket;
}

async function sessionsOf(n: TestNode, userId: string) {
  return (await n.client.listSessions({ userId })).sessions;
}

function b64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

async function signWithKey(
  privateKey: KeyObject,
  alg: string,
  claims: { sub?: string; iss?: string; aud?: string } = { sub: '61' },
): Promise<string> {
  let jwt = new SignJWT({}).setProtectedHeader({ alg }).setIssuedAt().setExpirationTime('10m');
  if (claims.sub !== undefined) jwt = jwt.setSubject(claims.sub);
  if (claims.iss !== undefined) jwt = jwt.setIssuer(claims.iss);
  if (claims.aud !== undefined) jwt = jwt.setAudience(claims.aud);
  return jwt.sign(privateKey);
}

function rsaPair() {
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}
function ecPair() {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}
function pem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }) as string;
}

/** Opens a Socket.IO v2 client with the given query string; closed in afterEach. */
function openV2(httpUrl: string, query: Record<string, string>): V2Socket {
  const socket = ioV2(`${httpUrl}?${new URLSearchParams(query).toString()}`, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  clients.push(socket);
  return socket;
}

/** A v2 client's handshake outcome: connected, or the payload of its `error` event. */
function v2Outcome(socket: V2Socket): Promise<{ connected: true } | { connected: false; error: { code?: string; message?: string } }> {
  return new Promise((resolve) => {
    socket.on('connect', () => resolve({ connected: true }));
    socket.on('error', (error: { code?: string; message?: string }) => resolve({ connected: false, error }));
  });
}

describe('handshake token checks', () => {
  it('registers a client with a valid token as the token’s user', async () => {
    const n = await node();
    const socket = await connect(n, { token: await signToken('61'), clientType: 'app' });
    const sessions = await sessionsOf(n, '61');
    expect(sessions.map((s) => [s.sessionId, s.userId, s.clientType])).toEqual([[socket.id, '61', 'app']]);
  });

  const refusals: [string, () => Promise<string | undefined>, string, RegExp][] = [
    ['no token', async () => undefined, 'token_missing', /no token/i],
    ['an expired token', () => signToken('61', { expiresIn: -60 }), 'token_expired', /expired/i],
    ['a token forged with another secret', () => signToken('61', { secret: OTHER_SECRET }), 'token_signature_invalid', /signature/i],
    ['an HS512 token (HS256 expected)', () => signToken('61', { alg: 'HS512' }), 'token_algorithm_not_allowed', /algorithm/i],
    [
      'an RS256 token against the HS256 server',
      () => signWithKey(rsaPair().privateKey, 'RS256'),
      'token_algorithm_not_allowed',
      /algorithm/i,
    ],
    [
      'an unsigned alg "none" token',
      async () => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: '61', exp: Math.floor(Date.now() / 1000) + 600 })}.`,
      'token_algorithm_not_allowed',
      /algorithm/i,
    ],
    ['a token without exp', () => signToken('61', { expiresIn: null }), 'token_claims_invalid', /"exp"/],
    ['a token without sub', () => signToken(undefined), 'token_claims_invalid', /"sub"/],
    // A login service that signs whatever it is given; such an id would wedge the Redis registry.
    ['a token whose sub holds a lone surrogate', () => signToken('61\uD800'), 'token_claims_invalid', /not well-formed Unicode/],
    ['a garbage string', async () => 'not-a-jwt-at-all', 'token_malformed', /not a valid JWT/i],
    ['three garbage segments', async () => 'abc.def.ghi', 'token_malformed', /not a valid JWT/i],
  ];

  it.each(refusals)('refuses %s with its code and creates no session', async (_label, makeToken, code, message) => {
    const n = await node();
    const token = await makeToken();
    const refused = await connectError(n.httpUrl, { ...(token !== undefined && { token }), clientType: 'app', query: { userId: '61' } });
    expect(refused.code).toBe(code);
    expect(refused.message).toMatch(message);
    expect(await sessionsOf(n, '61')).toEqual([]);
    expect([...n.app.local.all()]).toHaveLength(0);
  });

  it('takes the user id from the token, never from the query or auth payload', async () => {
    const n = await node();
    const socket = io(n.httpUrl, {
      auth: { token: await signToken('61'), clientType: 'web', userId: 'someone-else' },
      query: { userId: 'someone-else' },
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    clients.push(socket);
    await waitFor('connect', () => socket.connected);
    expect((await sessionsOf(n, '61')).map((s) => s.sessionId)).toEqual([socket.id]);
    expect(await sessionsOf(n, 'someone-else')).toEqual([]);
  });
});

describe('handshake client type checks', () => {
  it('refuses a client that sends no client type, listing the allowed ones', async () => {
    const n = await node();
    const refused = await connectError(n.httpUrl, { token: await signToken('61') });
    expect(refused.code).toBe('client_type_missing');
    expect(refused.message).toContain('app, pc, web');
    expect(await sessionsOf(n, '61')).toEqual([]);
  });

  it('refuses an unknown client type with the allowed list in the message', async () => {
    const n = await node();
    const refused = await connectError(n.httpUrl, { token: await signToken('61'), clientType: 'ios' });
    expect(refused.code).toBe('client_type_invalid');
    expect(refused.message).toContain('"ios"');
    expect(refused.message).toContain('app, pc, web');
    expect(await sessionsOf(n, '61')).toEqual([]);
  });

  it('normalizes the client type to lower case', async () => {
    const n = await node();
    const socket = await connect(n, { token: await signToken('61'), clientType: 'WEB' });
    const sessions = await sessionsOf(n, '61');
    expect(sessions.map((s) => [s.sessionId, s.clientType])).toEqual([[socket.id, 'web']]);
    const webOnly = await n.client.listSessions({ userId: '61', clientTypes: ['web'] });
    expect(webOnly.sessions).toHaveLength(1);
  });

  it('uses the client types configured in PUSHGATE_CLIENT_TYPES', async () => {
    const n = await node({ PUSHGATE_CLIENT_TYPES: 'ios,android' });
    const socket = await connect(n, { token: await signToken('61'), clientType: 'ios' });
    expect((await sessionsOf(n, '61')).map((s) => [s.sessionId, s.clientType])).toEqual([[socket.id, 'ios']]);

    const refused = await connectError(n.httpUrl, { token: await signToken('62'), clientType: 'web' });
    expect(refused.code).toBe('client_type_invalid');
    expect(refused.message).toContain('ios, android');
    expect(await sessionsOf(n, '62')).toEqual([]);
  });
});

describe('public-key tokens', () => {
  it.each([
    ['RS256', rsaPair],
    ['ES256', ecPair],
  ] as const)('%s: accepts a token signed with the private key and refuses one signed with another key', async (alg, makePair) => {
    const pair = makePair();
    const n = await node({ PUSHGATE_JWT_SECRET: '', PUSHGATE_JWT_PUBLIC_KEY: pem(pair.publicKey) });
    expect(n.app.config.auth.jwtSecret).toBeUndefined();

    const socket = await connect(n, { token: await signWithKey(pair.privateKey, alg), clientType: 'app' });
    expect((await sessionsOf(n, '61')).map((s) => s.sessionId)).toEqual([socket.id]);

    const stranger = makePair();
    const forged = await connectError(n.httpUrl, { token: await signWithKey(stranger.privateKey, alg, { sub: '62' }), clientType: 'app' });
    expect(forged.code).toBe('token_signature_invalid');
    expect(await sessionsOf(n, '62')).toEqual([]);
  });

  it.each([
    ['RS256', rsaPair],
    ['ES256', ecPair],
  ] as const)('%s: refuses an HS256 token that uses the public key as its HMAC secret', async (_alg, makePair) => {
    const pair = makePair();
    const publicPem = pem(pair.publicKey);
    const n = await node({ PUSHGATE_JWT_SECRET: '', PUSHGATE_JWT_PUBLIC_KEY: publicPem });
    const confused = await signToken('62', { secret: publicPem });
    const refused = await connectError(n.httpUrl, { token: confused, clientType: 'app' });
    expect(refused.code).toBe('token_algorithm_not_allowed');
    // A token signed with the test secret (a leftover HS256 setup) is refused as well.
    const leftover = await connectError(n.httpUrl, { token: await signToken('62'), clientType: 'app' });
    expect(leftover.code).toBe('token_algorithm_not_allowed');
    expect(await sessionsOf(n, '62')).toEqual([]);
  });

  it('an ES256 server refuses an RS256 token', async () => {
    const n = await node({ PUSHGATE_JWT_SECRET: '', PUSHGATE_JWT_PUBLIC_KEY: pem(ecPair().publicKey) });
    const refused = await connectError(n.httpUrl, {
      token: await signWithKey(rsaPair().privateKey, 'RS256', { sub: '62' }),
      clientType: 'app',
    });
    expect(refused.code).toBe('token_algorithm_not_allowed');
  });
});

describe('issuer and audience', () => {
  const env = { PUSHGATE_JWT_ISSUER: 'https://auth.example', PUSHGATE_JWT_AUDIENCE: 'pushgate' };

  it('accepts a token with the configured iss and aud', async () => {
    const pair = ecPair();
    const n = await node({ ...env, PUSHGATE_JWT_SECRET: '', PUSHGATE_JWT_PUBLIC_KEY: pem(pair.publicKey) });
    const token = await signWithKey(pair.privateKey, 'ES256', { sub: '61', iss: 'https://auth.example', aud: 'pushgate' });
    const socket = await connect(n, { token, clientType: 'pc' });
    expect((await sessionsOf(n, '61')).map((s) => s.sessionId)).toEqual([socket.id]);
  });

  it.each([
    ['a missing iss', { sub: '62', aud: 'pushgate' }, /"iss"/],
    ['a wrong iss', { sub: '62', iss: 'https://evil.example', aud: 'pushgate' }, /"iss"/],
    ['a missing aud', { sub: '62', iss: 'https://auth.example' }, /"aud"/],
    ['a wrong aud', { sub: '62', iss: 'https://auth.example', aud: 'another-service' }, /"aud"/],
  ])('refuses a token with %s as token_claims_invalid', async (_label, claims, named) => {
    const pair = ecPair();
    const n = await node({ ...env, PUSHGATE_JWT_SECRET: '', PUSHGATE_JWT_PUBLIC_KEY: pem(pair.publicKey) });
    const refused = await connectError(n.httpUrl, { token: await signWithKey(pair.privateKey, 'ES256', claims), clientType: 'app' });
    expect(refused.code).toBe('token_claims_invalid');
    expect(refused.message).toMatch(named);
    expect(await sessionsOf(n, '62')).toEqual([]);
  });

  it('enforces iss and aud for HS256 tokens too', async () => {
    const n = await node(env);
    const refused = await connectError(n.httpUrl, { token: await signToken('62'), clientType: 'app' });
    expect(refused.code).toBe('token_claims_invalid');
    expect(await sessionsOf(n, '62')).toEqual([]);
  });
});

describe('Socket.IO v2 legacy clients', () => {
  it('connect with ?token=&clientType=, receive a push and ack it', async () => {
    const n = await node();
    const legacy = openV2(n.httpUrl, { token: await signToken('61'), clientType: 'app' });
    expect(await v2Outcome(legacy)).toEqual({ connected: true });
    const received: unknown[] = [];
    legacy.on('notice', (data: unknown, ack: (reply: unknown) => void) => {
      received.push(data);
      ack({ seenBy: 'v2-app' });
    });

    const response = await n.client.pushToUser({ userId: '61', event: 'notice', data: { title: 'hello v2' } });

    expect(received).toEqual([{ title: 'hello v2' }]);
    expect(response.acked).toBe(1);
    expect(response.deliveries).toHaveLength(1);
    expect(response.deliveries[0]!.status).toBe(DeliveryStatus.DELIVERY_STATUS_ACKED);
    expect(response.deliveries[0]!.ackData).toEqual({ seenBy: 'v2-app' });
    expect(response.deliveries[0]!.session).toMatchObject({ userId: '61', clientType: 'app' });
  });

  it('are refused without a token, with the code and the reason in the error payload', async () => {
    const n = await node();
    const legacy = openV2(n.httpUrl, { userId: '61', clientType: 'app' });
    const outcome = await v2Outcome(legacy);
    expect(outcome.connected).toBe(false);
    if (outcome.connected) return;
    expect(outcome.error.code).toBe('token_missing');
    expect(outcome.error.message).toMatch(/no token/i);
    expect(await sessionsOf(n, '61')).toEqual([]);
  });

  it('are refused with a bad token like v4 clients', async () => {
    const n = await node();
    const legacy = openV2(n.httpUrl, { token: await signToken('61', { expiresIn: -60 }), clientType: 'app' });
    const outcome = await v2Outcome(legacy);
    expect(outcome).toMatchObject({ connected: false, error: { code: 'token_expired' } });
  });

  it('in insecure query mode, connect with ?userId= and no token as that user', async () => {
    const n = await node({ PUSHGATE_INSECURE_QUERY_AUTH: '1' });
    const legacy = openV2(n.httpUrl, { userId: '61', clientType: 'app' });
    expect(await v2Outcome(legacy)).toEqual({ connected: true });
    const sessions = await sessionsOf(n, '61');
    expect(sessions.map((s) => [s.sessionId, s.userId, s.clientType])).toEqual([[legacy.id, '61', 'app']]);
  });

  it('in insecure query mode, a token still wins over ?userId=, and a bad token is not excused by it', async () => {
    const n = await node({ PUSHGATE_INSECURE_QUERY_AUTH: '1' });
    const socket = await connect(n, { token: await signToken('61'), clientType: 'app', query: { userId: 'someone-else' } });
    expect((await sessionsOf(n, '61')).map((s) => s.sessionId)).toEqual([socket.id]);
    expect(await sessionsOf(n, 'someone-else')).toEqual([]);

    const forged = await connectError(n.httpUrl, {
      token: await signToken('62', { secret: OTHER_SECRET }),
      clientType: 'app',
      query: { userId: '62' },
    });
    expect(forged.code).toBe('token_signature_invalid');
    expect(await sessionsOf(n, '62')).toEqual([]);
  });
});

describe('application heartbeat', () => {
  it('advances last_seen_at when the client emits the configured heartbeat event, and acks it', async () => {
    const n = await node({ PUSHGATE_HEARTBEAT_EVENT: 'heartbeat' });
    const socket = await connect(n, { token: await signToken('61'), clientType: 'app' });
    const [before] = await sessionsOf(n, '61');
    const connectedAt = before!.lastSeenAt!.getTime();
    expect(before!.connectedAt!.getTime()).toBe(connectedAt);
    // Let the clock move past the connect time so a refresh is visible.
    await waitFor('the clock to advance', () => Date.now() > connectedAt + 5);

    const emittedAt = Date.now();
    const reply = await socket.timeout(2000).emitWithAck('heartbeat');

    expect(reply).toEqual({ ok: true });
    const [after] = await sessionsOf(n, '61');
    expect(after!.lastSeenAt!.getTime()).toBeGreaterThanOrEqual(emittedAt);
    expect(after!.connectedAt!.getTime()).toBe(connectedAt);
  });

  it('accepts a heartbeat without a callback', async () => {
    const n = await node({ PUSHGATE_HEARTBEAT_EVENT: 'heartbeat' });
    const socket = await connect(n, { token: await signToken('61'), clientType: 'app' });
    const [before] = await sessionsOf(n, '61');
    const connectedAt = before!.lastSeenAt!.getTime();
    await waitFor('the clock to advance', () => Date.now() > connectedAt + 5);
    socket.emit('heartbeat');
    await waitFor('last_seen_at to advance', async () => (await sessionsOf(n, '61'))[0]!.lastSeenAt!.getTime() > connectedAt);
  });

  it('ignores the event when no heartbeat event is configured', async () => {
    const n = await node();
    const socket = await connect(n, { token: await signToken('61'), clientType: 'app' });
    socket.on('notice', (_data: unknown, ack: () => void) => ack());
    const [before] = await sessionsOf(n, '61');
    const connectedAt = before!.lastSeenAt!.getTime();
    await waitFor('the clock to advance', () => Date.now() > connectedAt + 5);
    socket.emit('heartbeat');
    // The ack below travels on the same socket after the heartbeat, so the server has seen both.
    const response = await n.client.pushToUser({ userId: '61', event: 'notice', data: 1 });
    expect(response.acked).toBe(1);
    const [after] = await sessionsOf(n, '61');
    expect(after!.lastSeenAt!.getTime()).toBe(connectedAt);
  });
});

describe('secrets stay out of the logs', () => {
  it('logs neither the token nor the secret at level trace', async () => {
    const chunks: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk.toString());
        callback();
      },
    });
    const n = await node({}, createLogger('trace', sink));
    const token = await signToken('61');
    const forged = await signToken('61', { secret: OTHER_SECRET });

    const socket = await connect(n, { token, clientType: 'app' });
    socket.on('notice', (_data: unknown, ack: (reply: unknown) => void) => ack({ ok: 1 }));
    const legacy = openV2(n.httpUrl, { token, clientType: 'pc' });
    expect(await v2Outcome(legacy)).toEqual({ connected: true });
    legacy.on('notice', (_data: unknown, ack: (reply: unknown) => void) => ack({ ok: 2 }));
    expect((await connectError(n.httpUrl, { token: forged, clientType: 'app' })).code).toBe('token_signature_invalid');
    expect((await connectError(n.httpUrl, { token, clientType: 'ios' })).code).toBe('client_type_invalid');

    const response = await n.client.pushToUser({ userId: '61', event: 'notice', data: { hi: 1 } });
    expect(response.acked).toBe(2);
    await n.client.listSessions({ userId: '' }).catch(() => undefined);

    const text = chunks.join('');
    // The node did log at trace/debug level, so the check below is meaningful.
    expect(text).toContain('session connected');
    for (const secret of [token, token.split('.')[2]!, forged, forged.split('.')[2]!, TEST_SECRET, OTHER_SECRET]) {
      expect(text).not.toContain(secret);
    }
  });
});

describe('token lifetime', () => {
  /** An HS256 token with exactly these claims (seconds since the epoch). */
  function tokenWith(claims: { sub: string; iat?: number; exp: number }): Promise<string> {
    let jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(claims.sub).setExpirationTime(claims.exp);
    if (claims.iat !== undefined) jwt = jwt.setIssuedAt(claims.iat);
    return jwt.sign(new TextEncoder().encode(TEST_SECRET));
  }
  const nowS = (): number => Math.floor(Date.now() / 1000);

  it('refuses a token valid for longer than PUSHGATE_MAX_TOKEN_TTL, with or without iat', async () => {
    const n = await node();
    for (const token of [
      await tokenWith({ sub: '61', iat: nowS(), exp: nowS() + 100 * 365 * 86400 }),
      await tokenWith({ sub: '61', exp: nowS() + 8 * 86400 }),
    ]) {
      const refused = await connectError(n.httpUrl, { token, clientType: 'app' });
      expect(refused.code).toBe('token_claims_invalid');
      expect(refused.message).toContain('PUSHGATE_MAX_TOKEN_TTL');
    }
    // Within the limit (7 days by default) is fine.
    await connect(n, { token: await tokenWith({ sub: '61', iat: nowS(), exp: nowS() + 6 * 86400 }), clientType: 'app' });
  });

  it('refuses a token issued in the future beyond the clock skew', async () => {
    const n = await node();
    const refused = await connectError(n.httpUrl, {
      token: await tokenWith({ sub: '61', iat: nowS() + 365 * 86400, exp: nowS() + 3600 }),
      clientType: 'app',
    });
    expect(refused).toMatchObject({ code: 'token_claims_invalid', message: expect.stringContaining('"iat" is in the future') });
    await connect(n, { token: await tokenWith({ sub: '61', iat: nowS() + 30, exp: nowS() + 3600 }), clientType: 'app' });
  });

  it('closes a socket when its token expires, telling the client why', async () => {
    const n = await node();
    const socket = await connect(n, { token: await signToken('61', { expiresIn: 2 }), clientType: 'app' });
    const notices: unknown[] = [];
    socket.on('pushgate:disconnect', (notice: unknown) => notices.push(notice));
    const closed = new Promise<string>((resolve) => socket.once('disconnect', resolve));
    expect(await sessionsOf(n, '61')).toHaveLength(1);

    expect(await closed).toBe('io server disconnect');
    expect(notices).toEqual([{ reason: 'token_expired' }]);
    await waitFor('the expired session to be gone', async () => (await sessionsOf(n, '61')).length === 0);
  });

  it('keeps a socket past its first token when the client refreshes it, and refuses a refresh for another user', async () => {
    const n = await node();
    const socket = await connect(n, { token: await signToken('61', { expiresIn: 2 }), clientType: 'app' });

    expect(await socket.emitWithAck('pushgate:refresh', await signToken('someone-else'))).toMatchObject({
      ok: false,
      code: 'token_claims_invalid',
    });
    expect(await socket.emitWithAck('pushgate:refresh', 'garbage')).toMatchObject({ ok: false, code: 'token_malformed' });
    const answer = (await socket.emitWithAck('pushgate:refresh', await signToken('61', { expiresIn: 3600 }))) as {
      ok: boolean;
      expiresAt: string;
    };
    expect(answer.ok).toBe(true);
    expect(new Date(answer.expiresAt).getTime()).toBeGreaterThan(Date.now() + 3_500_000);

    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(socket.connected).toBe(true);
    expect(await sessionsOf(n, '61')).toHaveLength(1);
  });
});
