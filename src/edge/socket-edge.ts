import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { Server, type Socket } from 'socket.io';
import type { EdgeConfig, EdgeLimitsConfig } from '../config/config.js';
import type { InboxService } from '../domain/inbox-service.js';
import type { DisconnectReason } from '../domain/presence.js';
import type { RateLimiter } from '../domain/rate-limiter.js';
import type { SessionRecord } from '../domain/session.js';
import type { SessionRegistry } from '../domain/session-registry.js';
import type { SessionCloser } from '../domain/session-transport.js';
import { type ErrorCode, isPushgateError } from '../errors.js';
import { AddressLimits, type CountedConnection } from './address-limits.js';
import { ClientAddresses } from './client-address.js';
import { type EdgeObserver, NO_OBSERVER, ObservedRefusalLog } from './edge-observer.js';
import { engineAdmission } from './engine-admission.js';
import { handshakeMiddleware, type SocketIdentity } from './handshake.js';
import type { LocalSession, LocalSessions } from './local-sessions.js';
import { OriginPolicy } from './origin-policy.js';
import { replayTo } from './replay.js';
import { SessionCap } from './session-cap.js';
import { announceClose, closeAfterNotice, REASONS } from './session-close.js';
import { TokenExpiry } from './token-expiry.js';
import type { TokenVerifier } from './token-verifier.js';

export interface SocketEdgeDeps {
  readonly nodeId: string;
  readonly config: EdgeConfig;
  /** Legacy mode: trust `userId` from the query string when no token is sent. */
  readonly insecureQueryAuth: boolean;
  readonly registry: SessionRegistry;
  readonly local: LocalSessions;
  readonly verifier: TokenVerifier;
  readonly logger: Logger;
  /** False while the registry (Redis) is unreachable: new sockets are refused, live ones stay open. */
  readonly isRegistryAvailable: () => boolean;
  readonly limits: EdgeLimitsConfig;
  /** Dev mode: with no origin allowlist, any browser origin may connect. */
  readonly dev: boolean;
  /** This node's limiter for handshakes per address. */
  readonly handshakeLimiter: RateLimiter;
  /**
   * Closes sessions of the user held by other nodes, for the per-user cap's evict_oldest policy
   * (the app wires it to PushService.disconnect); this node's own are closed here.
   */
  readonly evictRemote: (userId: string, sessionIds: readonly string[], notice: string) => Promise<unknown>;
  /** Told of connects, disconnects and refusals (metrics); none by default. */
  readonly observer?: EdgeObserver;
  /** Stored messages, replayed to each session as it connects. */
  readonly inbox: InboxService;
}

/** Refusals after which the connection is closed at once, so that it does not keep holding its address's slot. */
const CLOSE_ON_REFUSAL: ReadonlySet<ErrorCode> = new Set(['too_many_connections', 'rate_limited']);

/**
 * A User-Agent is stored with the session and sent with every ListSessions reply and presence
 * event: an 8 KB header times thousands of sessions made multi-megabyte replies. Real ones are
 * far shorter than this.
 */
const MAX_USER_AGENT_LENGTH = 256;

/**
 * The client-facing edge: authenticates sockets, registers each as a session, keeps the local
 * socket index, and closes sessions on request.
 */
export class SocketEdge implements SessionCloser {
  readonly io: Server;
  /** Per client address limits of this node (open connections are counted only when a limit is on). */
  readonly addressLimits: AddressLimits;
  private readonly addresses: ClientAddresses;
  private readonly observer: EdgeObserver;
  /** Every local session with a token, by its exp. */
  private readonly expiry: TokenExpiry<LocalSession>;
  private readonly onSocketDisconnect: (this: Socket, reason: string) => void;
  private readonly onHeartbeat: (this: LocalSession) => void;
  private readonly onHeartbeatEvent: (this: Socket, ...args: unknown[]) => void;
  private draining = false;

  constructor(
    httpServer: HttpServer,
    private readonly deps: SocketEdgeDeps,
  ) {
    const { config, logger, limits } = deps;
    const origins = new OriginPolicy({ allowed: config.corsOrigins, dev: deps.dev });
    this.observer = deps.observer ?? NO_OBSERVER;
    const refusals = new ObservedRefusalLog(logger, this.observer);
    this.addresses = new ClientAddresses(limits.trustedProxies);
    this.addressLimits = new AddressLimits({
      maxConnections: limits.maxConnectionsPerIp,
      handshakesPerSecond: limits.maxHandshakesPerIpPerS,
      limiter: deps.handshakeLimiter,
    });
    const sessionCap = new SessionCap({
      max: limits.maxSessionsPerUser,
      policy: limits.sessionLimitPolicy,
      sessionsOf: (userId) => deps.registry.lookup(userId),
      evict: (userId, sessions) => this.evict(userId, sessions),
    });
    this.io = new Server(httpServer, {
      // Socket.IO v2 clients (the netty-socketio app base) speak engine.io protocol 3.
      allowEIO3: true,
      pingInterval: config.pingIntervalMs,
      pingTimeout: config.pingTimeoutMs,
      // A connection that never completes the Socket.IO handshake is closed after this.
      connectTimeout: limits.handshakeTimeoutMs,
      serveClient: true,
      // Long-polling from another site needs CORS; its headers name exactly the origins allowRequest lets in.
      ...(origins.cors() !== undefined && { cors: origins.cors() }),
      allowRequest: engineAdmission({ origins, addresses: this.addresses, addressLimits: this.addressLimits, refusals, logger }),
    });
    if (this.addressLimits.enabled) {
      this.io.engine.on('connection', (conn: CountedConnection & { request: IncomingMessage }) =>
        this.addressLimits.track(conn, this.addresses.of(conn.request)),
      );
    }
    this.io.use(
      handshakeMiddleware({
        verifier: deps.verifier,
        clientTypes: config.clientTypes,
        insecureQueryAuth: deps.insecureQueryAuth,
        isDraining: () => this.draining,
        isRegistryAvailable: deps.isRegistryAvailable,
        onInternalError: (err) => logger.error({ err }, 'socket handshake failed'),
        onRefused: (refusal, address) => refusals.refused(refusal.code, address, refusal.message),
        addressOf: (socket) => this.addresses.of(socket.request),
        admitAddress: (address) => this.addressLimits.admitSession(address),
        admitUser: (userId) => sessionCap.admit(userId),
        closeOn: CLOSE_ON_REFUSAL,
      }),
    );
    this.expiry = new TokenExpiry({
      verifier: deps.verifier,
      sessionOf: (socket) => deps.local.get(socket.id),
      onExpired: (entry) => {
        announceClose(entry, 'token_expired', 'token_expired');
        entry.socket.disconnect(true);
      },
      log: logger,
    });
    const edge = this;
    this.onSocketDisconnect = function (this: Socket, reason: string): void {
      edge.socketClosed(this, reason);
    };
    this.onHeartbeat = function (this: LocalSession): void {
      edge.touch(this);
    };
    this.onHeartbeatEvent = function (this: Socket, ...args: unknown[]): void {
      const entry = deps.local.get(this.id);
      if (entry !== undefined) edge.touch(entry);
      const ack = args[args.length - 1];
      if (typeof ack === 'function') ack({ ok: true });
    };
    this.io.on('connection', (socket) => this.onConnection(socket));
  }

  /**
   * Closes the oldest sessions of a user over the per-user cap, with the notice `too_many_sessions`:
   * this node's own here (presence reason `too_many_sessions`), other nodes' through the app.
   */
  private evict(userId: string, sessions: readonly SessionRecord[]): void {
    const { local, logger, nodeId } = this.deps;
    const own = sessions.filter((s) => s.nodeId === nodeId && local.get(s.sessionId) !== undefined).map((s) => s.sessionId);
    const others = sessions.filter((s) => s.nodeId !== nodeId).map((s) => s.sessionId);
    logger.info({ userId, evicted: [...own, ...others] }, 'per-user session limit reached; closing the oldest sessions');
    if (own.length > 0) void this.disconnect(own, 'too_many_sessions', 'too_many_sessions');
    if (others.length > 0) {
      this.deps.evictRemote(userId, others, 'too_many_sessions').catch((err: unknown) => {
        logger.warn({ userId, reason: (err as Error).message }, 'could not close the oldest sessions on another node');
      });
    }
  }

  private onConnection(socket: Socket): void {
    const { registry, local, config, logger, nodeId } = this.deps;
    const { userId, clientType, tokenExpiresAtMs, meta } = socket.data.identity as SocketIdentity;
    // Everything it held is in the record now; the socket need not keep it for its lifetime.
    socket.data.identity = undefined;
    const now = Date.now();
    const record: SessionRecord = {
      sessionId: socket.id,
      userId,
      clientType,
      nodeId,
      connectedAtMs: now,
      lastSeenAtMs: now,
      remoteAddress: this.addresses.of(socket.request),
      userAgent: String(socket.handshake.headers['user-agent'] ?? '').slice(0, MAX_USER_AGENT_LENGTH),
    };
    const entry = local.add(socket, record);
    entry.meta = meta;
    this.observer.connected(clientType);
    this.addressLimits.authenticate(socket.conn as unknown as CountedConnection, record.remoteAddress);
    const registered = registry.register(record).catch((err: unknown) => {
      logger.error({ err, sessionId: socket.id }, 'session registration failed; closing the socket');
      socket.disconnect(true);
    });
    // Kept only until it settles: an idle session should not hold a settled promise for its lifetime.
    entry.registered = registered;
    void registered.then(() => {
      if (entry.registered === registered) entry.registered = undefined;
    });
    replayTo(entry, local, this.deps.inbox, logger);

    // A socket lives no longer than its token, unless the client refreshes it (token-expiry.ts).
    if (tokenExpiresAtMs !== undefined) this.expiry.watch(entry, tokenExpiresAtMs);
    // The listeners are shared by every socket (Socket.IO calls them with the socket or the entry
    // as `this`): an idle session holds no closures of its own.
    socket.on('disconnect', this.onSocketDisconnect);
    socket.conn.on('heartbeat', this.onHeartbeat.bind(entry));
    if (config.heartbeatEvent !== undefined) socket.on(config.heartbeatEvent, this.onHeartbeatEvent);
    if (logger.isLevelEnabled('debug')) logger.debug({ sessionId: socket.id, userId, clientType }, 'session connected');
  }

  /** The socket closed: it leaves the local index and then the registry, once it is registered. */
  private socketClosed(socket: Socket, socketReason: string): void {
    const { registry, local, logger } = this.deps;
    const entry = local.get(socket.id);
    if (entry === undefined) return;
    this.expiry.unwatch(entry);
    local.remove(socket.id);
    const reason = entry.closeReason ?? REASONS[socketReason] ?? 'client_disconnect';
    this.observer.disconnected(reason);
    const { userId, sessionId } = entry.record;
    entry.unregistered = (entry.registered ?? Promise.resolve())
      .then(() => registry.unregister(userId, sessionId, reason))
      .catch((err: unknown) => {
        // Redis trouble: the registry remembers the departure and announces it once Redis answers.
        if (isPushgateError(err) && err.code === 'registry_unavailable') {
          logger.warn(
            { sessionId, reason: err.message },
            'session left while the registry was unreachable; it is announced when it answers again',
          );
        } else {
          logger.error({ err, sessionId }, 'session unregistration failed');
        }
      });
  }

  /** A heartbeat of the session's connection, or its client's heartbeat event: refreshes last_seen_at. */
  private touch(entry: LocalSession): void {
    const { userId, sessionId } = entry.record;
    this.deps.registry
      .touch(userId, sessionId, Date.now())
      .catch((err: unknown) => this.deps.logger.warn({ err }, 'last_seen_at refresh failed'));
  }

  /**
   * Closes local sessions: each client first receives DISCONNECT_NOTICE_EVENT with `{ reason: notice }`,
   * then its socket closes. Resolves once the sessions are out of the registry, with the ids of those closed.
   */
  async disconnect(sessionIds: readonly string[], reason: DisconnectReason, notice: string): Promise<string[]> {
    const closed: LocalSession[] = [];
    for (const sessionId of sessionIds) {
      const entry = this.deps.local.get(sessionId);
      if (entry === undefined) continue;
      announceClose(entry, reason, notice);
      entry.socket.disconnect(true);
      closed.push(entry);
    }
    await Promise.all(closed.map((entry) => entry.unregistered));
    return closed.map((entry) => entry.record.sessionId);
  }

  /** Refuses new sockets from now on. */
  startDraining(): void {
    this.draining = true;
  }

  /**
   * Closes every local session with reason `server_shutdown`, then the Socket.IO server. Each client
   * gets the notice before its connection closes, even if the connection was busy sending: the
   * Socket.IO server's own close discards whatever is still queued, so it runs only once every
   * connection has flushed and closed (or after SHUTDOWN_FLUSH_MS).
   */
  async close(): Promise<void> {
    this.draining = true;
    const entries = [...this.deps.local.all()];
    await Promise.all(entries.map((entry) => closeAfterNotice(entry)));
    await new Promise<void>((resolve) => {
      this.io.close(() => resolve());
    });
    await Promise.all(entries.map((entry) => entry.unregistered));
    this.expiry.close();
  }
}
