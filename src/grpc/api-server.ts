import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { InboxService } from '../domain/inbox-service.js';
import type { PresenceService } from '../domain/presence-service.js';
import type { PushService } from '../domain/push-service.js';
import type { RateLimiter } from '../domain/rate-limiter.js';
import type { ReceiptService } from '../domain/receipt-service.js';
import type { ApiKeys, Scope } from './api-keys.js';
import { type CallObserver, callMetricsInterceptor } from './call-metrics.js';
import { callerAuthInterceptor } from './caller-auth.js';
import { certificateSubject } from './client-certificates.js';
import { GrpcServer } from './grpc-server.js';
import { pushServiceHandlers } from './push-service-handlers.js';
import { grpcServerOptions } from './server-options.js';
import type { ApiCredentials } from './tls.js';
import type { InFlight } from './unary.js';

export interface ApiServerDeps {
  readonly config: Pick<Config, 'api' | 'apiLimits' | 'push' | 'edge' | 'inbox' | 'presence'>;
  readonly push: PushService;
  readonly presence: PresenceService;
  readonly inbox: InboxService;
  readonly receipts: ReceiptService;
  readonly keys: ApiKeys;
  readonly credentials: ApiCredentials;
  /** Client certificate CN → scopes (PUSHGATE_GRPC_CLIENT_CERT_SCOPES). */
  readonly certificateScopes: ReadonlyMap<string, ReadonlySet<Scope>>;
  readonly limiter: RateLimiter;
  readonly inFlight: InFlight;
  readonly calls: CallObserver;
  readonly log: Logger;
}

/** The gRPC API as one node serves it: the PushService handlers behind call metrics and the caller gate. */
export function createApiServer(deps: ApiServerDeps): GrpcServer {
  const { config, certificateScopes, log } = deps;
  return new GrpcServer({
    maxPayloadBytes: config.push.maxPayloadBytes,
    maxDataDepth: config.apiLimits.maxDataDepth,
    serverOptions: grpcServerOptions(config.apiLimits),
    interceptors: [
      // First in the list is innermost: it also sees the calls the auth gate refuses.
      callMetricsInterceptor(deps.calls),
      callerAuthInterceptor({
        keys: deps.keys,
        mutualTls: config.api.tlsClientCa !== undefined,
        // A verified certificate's CN is the caller; a CN not mapped to scopes may connect but call nothing.
        certificateCaller: (context) => {
          const name = certificateSubject(context);
          return name === undefined ? undefined : { name, scopes: certificateScopes.get(name) ?? new Set() };
        },
        limiter: deps.limiter,
        rates: config.apiLimits.rate,
        authHealth: config.api.authHealth,
        log,
      }),
    ],
    credentials: deps.credentials.credentials,
    handlers: pushServiceHandlers({
      push: deps.push,
      presence: deps.presence,
      inbox: deps.inbox,
      receipts: deps.receipts,
      watchBufferSize: config.presence.bufferSize,
      limits: { ...config.push, clientTypes: config.edge.clientTypes, inbox: config.inbox },
      apiLimits: config.apiLimits,
      inFlight: deps.inFlight,
      log,
    }),
  });
}
