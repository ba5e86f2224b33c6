import { fileURLToPath } from 'node:url';
import { Server, type ServerCredentials, type ServerInterceptor, type ServerOptions, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { PushServiceServer } from '../gen/pushgate/v1/push_service.js';
import { pushServiceDefinition } from './payload-size.js';
import { serializeWatchPresenceResponse } from './presence-encoding.js';
import { serializePushToUserResponse, serializePushToUsersResponse } from './push-encoding.js';

export const PUSH_SERVICE_NAME = 'pushgate.v1.PushService';
const PROTO_ROOT = fileURLToPath(new URL('../../proto/', import.meta.url));

export interface GrpcServerOptions {
  readonly handlers: PushServiceServer;
  readonly maxPayloadBytes: number;
  /** PUSHGATE_MAX_DATA_DEPTH: a pushed `data` nested deeper is refused with INVALID_ARGUMENT. */
  readonly maxDataDepth: number;
  /** Channel options: message size, streams per connection, keepalive (see server-options.ts). */
  readonly serverOptions: ServerOptions;
  /** Run for every call of every service (caller authentication, refusals, audit). */
  readonly interceptors: readonly ServerInterceptor[];
  /** Insecure, TLS or mutual TLS (see tls.ts). */
  readonly credentials: ServerCredentials;
}

/**
 * The gRPC server: PushService, grpc.health.v1.Health and server reflection (so grpcurl works
 * without the .proto files).
 */
export class GrpcServer {
  readonly server: Server;
  readonly health = new HealthImplementation({ '': 'NOT_SERVING', [PUSH_SERVICE_NAME]: 'NOT_SERVING' });

  private readonly credentials: ServerCredentials;

  constructor(options: GrpcServerOptions) {
    this.credentials = options.credentials;
    this.server = new Server({ ...options.serverOptions, interceptors: [...options.interceptors] });
    // Deserializers that never throw: a request they cannot decode is refused by its handler, with our trailers.
    const definition = pushServiceDefinition({ scanAboveBytes: options.maxPayloadBytes, maxDataDepth: options.maxDataDepth });
    // Presence events are encoded once for all the streams that carry them (see presence-encoding.ts);
    // push replies are written straight from their results (see push-encoding.ts).
    const service = {
      ...definition,
      watchPresence: { ...definition.watchPresence, responseSerialize: serializeWatchPresenceResponse },
      pushToUser: { ...definition.pushToUser, responseSerialize: serializePushToUserResponse },
      pushToUsers: { ...definition.pushToUsers, responseSerialize: serializePushToUsersResponse },
    } satisfies ServiceDefinition;
    this.server.addService(service, options.handlers);
    this.health.addToServer(this.server);
    new ReflectionService(reflectionDefinition()).addToServer(this.server);
  }

  async listen(host: string, port: number): Promise<number> {
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, this.credentials, (err, boundPort) => {
        if (err) reject(err);
        else resolve(boundPort);
      });
    });
  }

  setServing(serving: boolean): void {
    const status = serving ? 'SERVING' : 'NOT_SERVING';
    this.health.setStatus('', status);
    this.health.setStatus(PUSH_SERVICE_NAME, status);
  }

  /**
   * Stops taking new calls at once; resolves when every running call and stream has ended.
   * Long-lived streams (presence, health Watch) keep it pending until ended or `forceShutdown`.
   */
  stopAccepting(): Promise<void> {
    return new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }

  forceShutdown(): void {
    this.server.forceShutdown();
  }
}

function reflectionDefinition(): ReturnType<typeof loadSync> {
  const options = { includeDirs: [PROTO_ROOT], keepCase: true };
  return {
    ...loadSync('pushgate/v1/push_service.proto', options),
    ...loadSync(healthProtoPath, options),
  };
}
