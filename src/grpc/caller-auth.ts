import {
  type Metadata,
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type ServerListener,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ApiLimitsConfig } from '../config/config.js';
import type { RateLimiter } from '../domain/rate-limiter.js';
import { PushgateError } from '../errors.js';
import type { ApiKeys, Caller, Scope } from './api-keys.js';
import { requestIdOf, usersOf } from './call-context.js';
import type { AuthContext } from './client-certificates.js';
import { toGrpcError } from './status.js';

/** Metadata key under which the handlers find the authenticated caller's name; a client's own value is dropped. */
export const CALLER_METADATA = 'pushgate-caller';

/** The scope each PushService method needs. */
const METHOD_SCOPES: Readonly<Record<string, Scope>> = {
  '/pushgate.v1.PushService/PushToUser': 'push',
  // One call for the rate limit however many users: the gate decides before the request (and its
  // user count) arrives; PUSHGATE_MAX_BATCH_USERS bounds what one call may cost.
  '/pushgate.v1.PushService/PushToUsers': 'push',
  '/pushgate.v1.PushService/ListSessions': 'read',
  '/pushgate.v1.PushService/WatchPresence': 'read',
  '/pushgate.v1.PushService/DisconnectSessions': 'admin',
  '/pushgate.v1.PushService/ListInbox': 'read',
  '/pushgate.v1.PushService/DeleteInbox': 'admin',
  '/pushgate.v1.PushService/GetMessage': 'read',
  '/pushgate.v1.PushService/WatchReceipts': 'read',
};

/** Load balancers and grpcurl need these without a key, unless PUSHGATE_GRPC_AUTH_HEALTH says otherwise. */
const OPEN_PREFIXES = ['/grpc.health.v1.Health/', '/grpc.reflection.'];

export interface CallerAuthDeps {
  readonly keys: ApiKeys;
  /** True with a client CA: callers may prove themselves with a certificate instead of a key. */
  readonly mutualTls: boolean;
  /** The caller a verified client certificate stands for, if its subject is mapped. */
  readonly certificateCaller: (authContext: AuthContext) => Caller | undefined;
  /** Undefined: no rate limits. */
  readonly limiter: RateLimiter | undefined;
  readonly rates: ApiLimitsConfig['rate'];
  readonly authHealth: boolean;
  readonly log: Logger;
}

/**
 * The one gate in front of every gRPC call. It authenticates the caller (an API key as
 * `authorization: Bearer <key>`, or a client certificate under mutual TLS), checks the method's
 * scope, applies the caller's rate, and hands the caller's name to the handlers in metadata.
 * Refusals go through the one error mapping (trailers included) and are logged as audit lines
 * naming the caller and method, never a key. Without any key or client CA configured (the API is
 * then on loopback, or explicitly allowed open) every call is let through unnamed.
 */
export function callerAuthInterceptor(deps: CallerAuthDeps): ServerInterceptor {
  const required = (): boolean => deps.keys.configured || deps.mutualTls;
  return (method, call) => {
    // Nothing to check (no key, no client CA, or an open method): the layer only drops a
    // client-sent caller name, through objects shared by every such call.
    if (!required() || (!deps.authHealth && OPEN_PREFIXES.some((prefix) => method.path.startsWith(prefix)))) {
      return new ServerInterceptingCall(call, UNCHECKED);
    }
    // A refused PushService call is answered once its request has arrived, so the audit line can
    // name the user it was about; the request then goes no further (the handler never runs).
    let refusing = false;
    let refusedAt: ((request: unknown) => void) | undefined;
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, proceed) => {
            metadata.remove(CALLER_METADATA);
            const refuseCall = (err: unknown, caller: string): void => {
              if (METHOD_SCOPES[method.path] === undefined) {
                refuse(deps.log, call, method.path, metadata, err, caller, undefined);
                return;
              }
              // Answered without the user if the request does not follow promptly.
              const timer = setTimeout(() => refusedAt?.(undefined), REQUEST_WAIT_MS);
              refusedAt = (request) => {
                clearTimeout(timer);
                refusedAt = undefined;
                refuse(deps.log, call, method.path, metadata, err, caller, request);
              };
              refusing = true;
              proceed(metadata);
            };
            let caller: Caller;
            try {
              caller = authenticate(deps, metadata, call);
            } catch (err) {
              refuseCall(err, '');
              return;
            }
            authorize(deps, method.path, caller).then(
              () => {
                metadata.set(CALLER_METADATA, caller.name);
                proceed(metadata);
              },
              (err: unknown) => refuseCall(err, caller.name),
            );
          },
          onReceiveMessage: (message, proceed) => {
            if (!refusing) proceed(message);
            else refusedAt?.(message);
          },
          onReceiveHalfClose: (proceed) => {
            if (!refusing) proceed();
          },
        }),
    });
  };
}

/** The layer of a call nothing is checked for: it passes everything on but a client-sent caller name. */
const UNCHECKED_LISTENER: ServerListener = {
  onReceiveMetadata: (metadata, proceed) => {
    metadata.remove(CALLER_METADATA);
    proceed(metadata);
  },
};
const UNCHECKED = { start: (next: (listener: ServerListener) => void): void => next(UNCHECKED_LISTENER) };

/** How long a refused call's request is waited for, to name its user in the audit line. */
const REQUEST_WAIT_MS = 1000;

/** Checks the method's scope and the caller's rate; resolves when the call may go ahead. */
async function authorize(deps: CallerAuthDeps, path: string, caller: Caller): Promise<void> {
  const scope = METHOD_SCOPES[path];
  // Health, reflection (when behind auth) and unknown methods need a caller, not a scope.
  if (scope === undefined) return;
  if (!caller.scopes.has(scope)) {
    throw new PushgateError('permission_denied', `this caller is not allowed to call ${methodName(path)}: it needs the "${scope}" scope`);
  }
  const rate = deps.rates[scope];
  if (deps.limiter !== undefined && rate.perSecond > 0) {
    const retryAfterMs = await deps.limiter.consume(`${caller.name}:${scope}`, rate).catch((err: unknown) => {
      // The limit store (Redis) is away: calls are not refused for that; the call itself will say what it can.
      deps.log.debug({ err, caller: caller.name }, 'rate limit unavailable; call admitted');
      return 0;
    });
    if (retryAfterMs > 0) {
      throw new PushgateError(
        'rate_limited',
        `more than ${rate.perSecond} "${scope}" calls per second (burst ${rate.burst}) from this caller; retry in ${retryAfterMs} ms`,
        { details: { retry_after_ms: String(retryAfterMs) } },
      );
    }
  }
}

function authenticate(deps: CallerAuthDeps, metadata: Metadata, call: ServerInterceptingCallInterface): Caller {
  const header = metadata.get('authorization')[0];
  if (typeof header === 'string' && header !== '') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const caller = match === null ? undefined : deps.keys.verify(match[1]!);
    // One answer for a malformed header, an unknown key and a revoked one: nothing about which keys exist.
    if (caller === undefined) throw new PushgateError('unauthenticated', 'the API key was not accepted');
    return caller;
  }
  if (deps.mutualTls) {
    const caller = deps.certificateCaller(call.getAuthContext());
    if (caller !== undefined) return caller;
  }
  throw new PushgateError('unauthenticated', 'no credentials: send an API key as "authorization: Bearer <key>" metadata');
}

/** Answers a refused call; the refusal is logged (info) with the caller's name and the user(s) the request named, as an audit line. */
function refuse(
  log: Logger,
  call: ServerInterceptingCallInterface,
  path: string,
  metadata: Metadata,
  err: unknown,
  caller: string,
  request: unknown,
): void {
  const status = toGrpcError(err, log, requestIdOf({ metadata }), methodName(path), caller, usersOf(request));
  // Standard gRPC retry pushback, for clients that honour it, beside pushgate-retry-after-ms.
  const retryAfterMs = status.metadata?.get('pushgate-retry-after-ms')[0];
  if (typeof retryAfterMs === 'string') status.metadata?.set('grpc-retry-pushback-ms', retryAfterMs);
  call.sendStatus({ code: status.code, details: status.details, metadata: status.metadata ?? null });
}

function methodName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
