import type { ExtendedError, Socket } from 'socket.io';
import { isWellFormed, MAX_USER_ID_LENGTH } from '../domain/session.js';
import { type ErrorCode, isPushgateError, PushgateError } from '../errors.js';
import type { TokenVerifier } from './token-verifier.js';

/** Who a socket is, established once at handshake and kept in `socket.data`. */
export interface SocketIdentity {
  readonly userId: string;
  readonly clientType: string;
  /** When the token's exp passes; undefined for the legacy query mode, which has no token. */
  readonly tokenExpiresAtMs: number | undefined;
  /** The client asked for message metadata (`auth.meta: true` or `?meta=1`): pushes arrive as (data, meta, ack). */
  readonly meta: boolean;
}

export interface HandshakeOptions {
  readonly verifier: TokenVerifier;
  readonly clientTypes: readonly string[];
  readonly insecureQueryAuth: boolean;
  /** Refuses new sockets while the node drains. */
  readonly isDraining: () => boolean;
  /** Refuses new sockets while the session registry (Redis) is unreachable: they could not be registered. */
  readonly isRegistryAvailable: () => boolean;
  readonly onInternalError: (err: unknown) => void;
  /** Told of every refusal, for the audit log. */
  readonly onRefused: (refusal: PushgateError, address: string) => void;
  /** The client's address (trusted proxies resolved). */
  readonly addressOf: (socket: Socket) => string;
  /** Checks of the client address, before the token is looked at; throws a refusal. */
  readonly admitAddress: (address: string) => Promise<void>;
  /** Checks of the user (the session cap), once the token is verified; throws a refusal. */
  readonly admitUser: (userId: string) => Promise<void>;
  /** Refusals with these codes also close the connection: the address must not keep the slot. */
  readonly closeOn: ReadonlySet<ErrorCode>;
}

/**
 * The payload of a refused handshake's `connect_error`: `err.message` says why, `err.data.code` is
 * stable. Socket.IO v2 clients get this object as their `error` event's argument.
 */
export interface ConnectErrorData {
  readonly code: ErrorCode;
  /** Only for Socket.IO v2 clients, whose `error` event carries `data` alone. */
  readonly message?: string;
}

type Middleware = (socket: Socket, next: (err?: ExtendedError) => void) => void;

/**
 * Socket.IO middleware: establishes the user id from a verified token (never from the client's
 * say-so, unless the legacy insecure query mode is on) and the client type from the allowed list.
 * v4 clients send `auth: { token, clientType }`; Socket.IO v2 clients have no auth payload and send
 * both as query parameters.
 */
export function handshakeMiddleware(options: HandshakeOptions): Middleware {
  return (socket, next) => {
    identify(socket, options).then(
      (identity) => {
        socket.data.identity = identity;
        next();
      },
      (err: unknown) => {
        if (!isPushgateError(err)) options.onInternalError(err);
        const refusal = isPushgateError(err) ? err : new PushgateError('internal', 'internal error during handshake');
        options.onRefused(refusal, options.addressOf(socket));
        const connectError: ExtendedError = new Error(refusal.message);
        // Socket.IO v2 clients (engine.io protocol 3) receive only `data` when it is set, not the
        // message, so they get the reason inside `data`.
        connectError.data = (
          socket.conn.protocol === 3 ? { code: refusal.code, message: refusal.message } : { code: refusal.code }
        ) satisfies ConnectErrorData;
        next(connectError);
        // Socket.IO sends the refusal on the next tick; the close waits for it to be written.
        if (options.closeOn.has(refusal.code)) setImmediate(() => socket.conn.close());
      },
    );
  };
}

async function identify(socket: Socket, options: HandshakeOptions): Promise<SocketIdentity> {
  if (options.isDraining()) throw new PushgateError('shutting_down', 'server is shutting down; reconnect to another node');
  if (!options.isRegistryAvailable()) {
    throw new PushgateError(
      'registry_unavailable',
      'this node cannot reach its session registry right now; retry shortly or connect to another node',
    );
  }
  await options.admitAddress(options.addressOf(socket));
  const { auth, query } = socket.handshake;
  const token = pick(auth, query, 'token');
  let userId: string;
  let tokenExpiresAtMs: number | undefined;
  if (token !== undefined) {
    ({ userId, expiresAtMs: tokenExpiresAtMs } = await options.verifier.verify(token));
  } else if (options.insecureQueryAuth && pick(undefined, query, 'userId') !== undefined) {
    userId = pick(undefined, query, 'userId')!;
    if (userId.length > MAX_USER_ID_LENGTH) {
      throw new PushgateError('invalid_argument', `userId must be at most ${MAX_USER_ID_LENGTH} characters`);
    }
    if (!isWellFormed(userId)) throw new PushgateError('invalid_argument', 'userId is not well-formed Unicode');
  } else {
    throw new PushgateError('token_missing', 'no token: send auth: { token } (Socket.IO v4) or ?token= in the query (Socket.IO v2)');
  }
  const clientType = clientTypeOf(pick(auth, query, 'clientType'), options.clientTypes);
  await options.admitUser(userId);
  return { userId, clientType, tokenExpiresAtMs, meta: wantsMeta(auth, query) };
}

function clientTypeOf(raw: string | undefined, allowed: readonly string[]): string {
  if (raw === undefined || raw.trim() === '') {
    throw new PushgateError('client_type_missing', `no clientType: send one of ${allowed.join(', ')}`);
  }
  const clientType = raw.trim().toLowerCase();
  if (!allowed.includes(clientType)) {
    throw new PushgateError('client_type_invalid', `clientType "${raw.slice(0, 32)}" is not allowed: use one of ${allowed.join(', ')}`);
  }
  return clientType;
}

/** Metadata is opt-in: legacy `on('notice', (data, ack) => …)` handlers must keep their arguments. */
function wantsMeta(auth: Record<string, unknown> | undefined, query: Record<string, unknown>): boolean {
  const value = auth?.meta ?? query.meta;
  return value === true || value === '1' || value === 'true';
}

/** The auth payload wins over the query; only non-empty strings count. */
function pick(auth: Record<string, unknown> | undefined, query: Record<string, unknown>, name: string): string | undefined {
  for (const value of [auth?.[name], query[name]]) {
    if (typeof value === 'string' && value !== '') return value;
  }
  return undefined;
}
