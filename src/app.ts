import type { Server as HttpServer } from 'node:http';
import type { Logger } from 'pino';
import { type DeliveryGuarantees, deliveryGuarantees } from './app-delivery.js';
import { ClusterMode } from './cluster/cluster.js';
import type { Config } from './config/config.js';
import type { InboxService } from './domain/inbox-service.js';
import { PresenceService } from './domain/presence-service.js';
import { PushService } from './domain/push-service.js';
import type { RateLimiter } from './domain/rate-limiter.js';
import type { SessionRegistry } from './domain/session-registry.js';
import { NO_OTHER_NODES } from './domain/session-transport.js';
import { LocalSessions } from './edge/local-sessions.js';
import { SocketEdge } from './edge/socket-edge.js';
import { TokenVerifier } from './edge/token-verifier.js';
import { StartError } from './errors.js';
import { ApiKeys } from './grpc/api-keys.js';
import { createApiServer } from './grpc/api-server.js';
import { clientCertificateScopes } from './grpc/client-certificates.js';
import type { GrpcServer } from './grpc/grpc-server.js';
import { type ApiCredentials, apiCredentials } from './grpc/tls.js';
import { InFlight } from './grpc/unary.js';
import { Dashboard } from './http/dashboard.js';
import { keyOperatorAuth } from './http/dashboard-auth.js';
import { createHttpServer, listen, type NodeStatus, type NotReadyReason } from './http/http-server.js';
import { MemoryRateLimiter } from './limits/memory-rate-limiter.js';
import { RedisRateLimiter } from './limits/redis-rate-limiter.js';
import { Metrics } from './metrics/metrics.js';
import { MemorySessionRegistry } from './registry/memory-registry.js';

export interface BoundPorts {
  readonly grpcPort: number;
  readonly httpPort: number;
}

/**
 * One pushgate node, wired from a Config: registry, services, Socket.IO edge, gRPC API. main.ts
 * runs it for real; tests run the very same object on ephemeral ports.
 */
export class App {
  readonly registry: SessionRegistry;
  readonly local: LocalSessions;
  readonly push: PushService;
  readonly presence: PresenceService;
  /** The offline inbox: in memory on one node (lost on restart), in Redis in cluster mode. */
  readonly inbox: InboxService;
  /** The inbox, receipts and idempotent pushes, wired on memory or Redis stores. */
  readonly delivery: DeliveryGuarantees;
  readonly edge: SocketEdge;
  readonly grpc: GrpcServer;
  readonly http: HttpServer;
  readonly verifier: TokenVerifier;
  readonly apiCredentials: ApiCredentials;
  /** The API keys callers present; reloaded with the certificates on SIGHUP (`reloadCredentials`). */
  readonly apiKeys: ApiKeys;
  /** Undefined on a single node (no REDIS_URL). */
  readonly cluster: ClusterMode | undefined;
  /** Per-caller rates of the gRPC API: on this node alone, or (cluster mode) shared by all nodes through Redis. */
  readonly limiter: RateLimiter;
  /** This node's Prometheus metrics (`/metrics`); a registry per App, never prom-client's global one. */
  readonly metrics: Metrics;
  /** The operator dashboard at /dashboard; undefined unless PUSHGATE_DASHBOARD is on. */
  readonly dashboard: Dashboard | undefined;
  private readonly inFlight = new InFlight();
  private draining = false;
  private stopping: Promise<void> | undefined;
  private ports: BoundPorts | undefined;

  constructor(
    readonly config: Config,
    private readonly log: Logger,
  ) {
    const { redis, server, edge, presence, auth, inbox } = config;
    this.local = new LocalSessions(config.edgeLimits);
    // The gauges read the node's state at scrape time (the services are built below).
    const leaseHeld = redis === undefined ? undefined : () => this.cluster?.healthy === true;
    this.metrics = new Metrics({
      clientTypes: edge.clientTypes,
      sessions: () => this.local.all(),
      watches: () => this.presence.size,
      leaseHeld,
    });
    this.cluster =
      redis === undefined
        ? undefined
        : new ClusterMode({ ...config, redis }, log, () => this.updateServing(), { bus: this.metrics.bus, redis: this.metrics.redis });
    this.registry =
      this.cluster?.registry ??
      new MemorySessionRegistry({ retention: presence.retention, retentionMs: presence.retentionMs }, (err) =>
        log.error({ err }, 'presence listener failed'),
      );
    this.limiter =
      this.cluster === undefined || redis === undefined
        ? new MemoryRateLimiter()
        : new RedisRateLimiter({ client: this.cluster.command, keyPrefix: redis.keyPrefix });
    this.verifier = new TokenVerifier(auth);
    this.delivery = deliveryGuarantees(config, this.cluster, this.metrics.registry, log);
    this.inbox = this.delivery.inbox;
    this.local.onLateAck((session, message, ackData, latencyUs) => this.inbox.lateAck(session, message, ackData, latencyUs));
    // The HTTP surfaces that push (dashboard, /dev/push) check requests by the gRPC API's limits.
    const httpPushLimits = { ...config.push, clientTypes: edge.clientTypes, maxDataDepth: config.apiLimits.maxDataDepth, inbox };
    this.http = createHttpServer({
      dev: server.dev,
      demoPage: server.demoPage,
      nodeId: server.nodeId,
      clientTypes: edge.clientTypes,
      tokens: this.verifier,
      grpcPort: () => this.ports?.grpcPort,
      dashboard: () => this.dashboard,
      devPush: () => ({ push: this.push, limits: httpPushLimits }),
      notReady: () => this.notReady,
      metrics: this.metrics,
      log,
    });
    this.edge = new SocketEdge(this.http, {
      nodeId: server.nodeId,
      config: edge,
      insecureQueryAuth: auth.insecureQueryAuth,
      registry: this.registry,
      local: this.local,
      verifier: this.verifier,
      logger: log,
      isRegistryAvailable: () => this.cluster?.healthy ?? true,
      limits: config.edgeLimits,
      dev: server.dev,
      // Per node, as the per-address limits are: no Redis round trip on every handshake.
      handshakeLimiter: new MemoryRateLimiter(),
      // The per-user cap's evict_oldest reaches the sessions other nodes hold.
      evictRemote: (userId, sessionIds, notice) =>
        this.push.disconnect(userId, { sessionIds }, notice, AbortSignal.timeout(config.push.maxAckTimeoutMs), 'too_many_sessions'),
      observer: this.metrics.edge,
      inbox: this.inbox,
    });
    this.push = new PushService({
      nodeId: server.nodeId,
      registry: this.registry,
      local: this.local,
      closer: this.edge,
      remote: this.cluster?.remote ?? NO_OTHER_NODES,
      observer: this.metrics.push,
      inbox: this.inbox,
      receipts: this.delivery.receipts,
      idempotent: this.delivery.idempotent,
      onBackgroundError: (err) => log.warn({ reason: (err as Error).message }, 'receipt of a push could not be updated'),
    });
    this.apiKeys = startingWith(() => new ApiKeys({ file: config.api.apiKeysFile, inline: config.api.apiKeys }));
    this.apiCredentials = startingWith(() => apiCredentials(config.api, log));
    const certificateScopes = startingWith(() => clientCertificateScopes(config.api.clientCertScopes));
    this.presence = new PresenceService({
      feed: this.registry,
      bufferSize: presence.bufferSize,
      bufferBytes: config.apiLimits.presenceBufferBytes,
      maxStreams: config.apiLimits.maxWatchStreams,
      maxStreamsPerCaller: config.apiLimits.maxWatchStreamsPerCaller,
    });
    const cluster = this.cluster;
    this.dashboard = server.dashboard
      ? new Dashboard({
          nodeId: server.nodeId,
          push: this.push,
          presence: this.presence,
          feed: this.registry,
          liveNodes: cluster && (() => cluster.liveNodes()),
          auth: keyOperatorAuth(this.apiKeys, config.api),
          limits: httpPushLimits,
          metrics: this.metrics.registry,
          log,
        })
      : undefined;
    this.grpc = createApiServer({
      config,
      push: this.push,
      presence: this.presence,
      inbox: this.inbox,
      receipts: this.delivery.receipts,
      keys: this.apiKeys,
      credentials: this.apiCredentials,
      certificateScopes,
      limiter: this.limiter,
      inFlight: this.inFlight,
      calls: this.metrics.grpc,
      log,
    });
  }

  get boundPorts(): BoundPorts {
    if (this.ports === undefined) throw new Error('app is not started');
    return this.ports;
  }

  /**
   * Re-reads the API keys and the TLS certificates (SIGHUP): rotated or revoked keys and renewed
   * certificates take effect without a restart or a dropped connection. A keys file that cannot be
   * used leaves the previous keys in force, and says so.
   */
  reloadCredentials(): void {
    try {
      this.apiKeys.reload();
      this.log.info({ keys: this.apiKeys.size }, 'API keys reloaded');
    } catch (err) {
      this.log.error({ reason: (err as Error).message }, 'API keys not reloaded; the previous keys stay in force');
    }
    this.apiCredentials.reload();
  }

  /** Whether the node takes work now, and if not, why. */
  get status(): NodeStatus {
    return this.notReady[0] ?? 'ok';
  }

  /** Why the node takes no work now (empty: it does); /readyz is 503 and gRPC health NOT_SERVING exactly then. */
  get notReady(): NotReadyReason[] {
    const reasons: NotReadyReason[] = this.draining ? ['draining'] : [];
    if (this.cluster?.healthy === false) reasons.push('registry_unavailable');
    return reasons;
  }

  /**
   * Joins the cluster (cluster mode), then binds both servers. Unreachable Redis or a port that is
   * taken fails with a StartError naming the setting.
   */
  async start(): Promise<BoundPorts> {
    const { host, grpcPort, httpPort } = this.config.server;
    const grpcHost = this.config.api.host;
    await this.cluster?.start(this.local, this.edge).catch((err: unknown) => {
      throw new StartError((err as Error).message);
    });
    // A node that cannot bind its ports gives its lease back: otherwise other nodes would count it
    // alive (and route to it) until the lease lapsed.
    const leave = async (): Promise<void> => {
      await this.cluster?.stop().catch((err: unknown) => this.log.warn({ err }, 'could not give up the lease after a failed start'));
    };
    const boundGrpc = await this.grpc.listen(grpcHost, grpcPort).catch(async (err: unknown) => {
      await leave();
      throw new StartError(
        `cannot serve gRPC on ${grpcHost}:${grpcPort} (PUSHGATE_GRPC_HOST, PUSHGATE_GRPC_PORT): ${(err as Error).message}`,
      );
    });
    const boundHttp = await listen(this.http, host, httpPort).catch(async (err: unknown) => {
      this.grpc.forceShutdown();
      await leave();
      throw new StartError(`cannot serve HTTP on ${host}:${httpPort} (PUSHGATE_HOST, PUSHGATE_HTTP_PORT): ${(err as Error).message}`);
    });
    this.ports = { grpcPort: boundGrpc, httpPort: boundHttp };
    this.inbox.startExpiry();
    this.updateServing();
    return this.ports;
  }

  /** gRPC calls running now (PushToUser, PushToUsers, …): what a drain waits for. */
  get callsInFlight(): number {
    return this.inFlight.size;
  }

  /** gRPC health follows the node's status: NOT_SERVING while draining or while Redis is unreachable. */
  private updateServing(): void {
    if (this.ports !== undefined) this.grpc.setServing(this.notReady.length === 0);
  }

  /**
   * Graceful drain: refuse new work, let in-flight calls finish (bounded by shutdownGraceMs), close
   * every socket with reason `server_shutdown` (presence watchers see it), end presence streams,
   * then stop the servers. Calling it again returns the same promise.
   */
  stop(): Promise<void> {
    this.stopping ??= this.drain();
    return this.stopping;
  }

  private async drain(): Promise<void> {
    const graceMs = this.config.server.shutdownGraceMs;
    this.draining = true;
    this.updateServing();
    this.edge.startDraining();
    const grpcStopped = this.grpc.stopAccepting();
    const finished = await this.inFlight.idle(graceMs);
    if (!finished) this.log.warn({ inFlight: this.inFlight.size }, 'shutdown grace ended with calls still running');
    this.presence.acceptFinalBurst();
    await this.edge.close();
    this.presence.endAll();
    this.delivery.receipts.endAll();
    await this.delivery.close();
    const timer = setTimeout(() => this.grpc.forceShutdown(), Math.min(graceMs, 2000));
    await grpcStopped;
    clearTimeout(timer);
    this.apiCredentials.close();
    await this.limiter.close();
    if (this.cluster !== undefined) await this.cluster.stop();
    else await this.registry.close();
  }
}

/** Builds a part whose settings can only be checked by reading files (keys, certificates): a bad one stops the start, naming it. */
function startingWith<T>(build: () => T): T {
  try {
    return build();
  } catch (err) {
    throw new StartError((err as Error).message);
  }
}
