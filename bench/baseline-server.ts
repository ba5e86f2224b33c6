import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as GrpcServer, ServerCredentials, status } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { jwtVerify } from 'jose';
import { Server as IoServer, type Socket } from 'socket.io';
import { DeliveryStatus, type PushServiceServer, PushServiceService, type SessionDelivery } from '../src/gen/pushgate/v1/push_service.js';

export interface BaselineOptions {
  /** Verify `auth.token` as an HS256 JWT with this secret (user = sub), as pushgate does; else trust `auth.userId`. */
  readonly jwtSecret?: string;
  /**
   * The minimal Redis composition: a set of session ids per user and a hash of JSON records,
   * written in one pipelined round trip per connect and per disconnect; a push looks the user up
   * with one SMEMBERS and one HMGET (and emits to the sockets it holds).
   */
  readonly redisUrl?: string;
}

export interface Baseline {
  readonly grpcAddress: string;
  readonly httpUrl: string;
  readonly io: IoServer;
  stop(): Promise<void>;
}

/**
 * The floor pushgate's hot path is measured against: the least code that composes grpc-js and
 * Socket.IO into the same PushToUser answer — a Map of sockets by user, one emit per socket, one
 * timer per call, no validation, logging or registry abstraction (optionally the same JWT check,
 * and a Redis lookup: see BaselineOptions).
 */
export async function startBaseline(options: BaselineOptions = {}): Promise<Baseline> {
  const byUser = new Map<string, Set<Socket>>();
  const bySession = new Map<string, Socket>();
  const connectedAt = new WeakMap<Socket, number>();
  const http: HttpServer = createServer();
  const io = new IoServer(http);
  const redis = options.redisUrl === undefined ? undefined : new Redis(options.redisUrl);
  const key = options.jwtSecret === undefined ? undefined : new TextEncoder().encode(options.jwtSecret);
  if (key !== undefined) {
    io.use((socket, next) => {
      jwtVerify(String(socket.handshake.auth.token), key, { algorithms: ['HS256'], requiredClaims: ['exp', 'sub'] }).then(
        ({ payload }) => {
          socket.data.userId = payload.sub;
          next();
        },
        (err: Error) => next(err),
      );
    });
  }
  io.on('connection', (socket) => {
    const userId = String(socket.data.userId ?? socket.handshake.auth.userId);
    const sockets = byUser.get(userId) ?? new Set();
    byUser.set(userId, sockets);
    sockets.add(socket);
    bySession.set(socket.id, socket);
    connectedAt.set(socket, Date.now());
    const record = redis && JSON.stringify({ sessionId: socket.id, userId, clientType: socket.handshake.auth.clientType, at: Date.now() });
    redis?.pipeline().sadd(`u:{${userId}}`, socket.id).hset(`s:{${userId}}`, socket.id, record!).exec();
    socket.on('disconnect', () => {
      sockets.delete(socket);
      bySession.delete(socket.id);
      redis?.pipeline().srem(`u:{${userId}}`, socket.id).hdel(`s:{${userId}}`, socket.id).exec();
    });
  });

  /** The user's sockets: from the Map, or looked up in Redis (records decoded) and matched to local sockets. */
  async function lookup(userId: string): Promise<Socket[]> {
    if (redis === undefined) return [...(byUser.get(userId) ?? [])];
    const ids = await redis.smembers(`u:{${userId}}`);
    const records = ids.length === 0 ? [] : await redis.hmget(`s:{${userId}}`, ...ids);
    return records.flatMap((r) => {
      const socket = r === null ? undefined : bySession.get((JSON.parse(r) as { sessionId: string }).sessionId);
      return socket === undefined ? [] : [socket];
    });
  }

  const handlers: PushServiceServer = {
    async pushToUser(call, callback) {
      const { userId, event, data, ackTimeoutMs } = call.request;
      const sockets = await lookup(userId);
      const deliveries: SessionDelivery[] = sockets.map((socket) => ({
        // The same answer pushgate gives: a full session record per delivery.
        session: {
          sessionId: socket.id,
          userId,
          clientType: String(socket.handshake.auth.clientType),
          nodeId: 'baseline',
          connectedAt: new Date(connectedAt.get(socket)!),
          lastSeenAt: new Date(connectedAt.get(socket)!),
          remoteAddress: socket.handshake.address,
          userAgent: String(socket.handshake.headers['user-agent'] ?? ''),
        },
        status: DeliveryStatus.DELIVERY_STATUS_TIMEOUT,
        latencyUs: 0,
        ackData: undefined,
        error: '',
      }));
      let remaining = sockets.length;
      const reply = (): void => {
        clearTimeout(timer);
        callback(null, {
          messageId: call.request.messageId,
          deliveries,
          acked: sockets.length - remaining,
          timedOut: remaining,
          failed: 0,
          stored: false,
          duplicate: false,
        });
      };
      const timer = setTimeout(reply, ackTimeoutMs || 5000);
      if (remaining === 0) return reply();
      sockets.forEach((socket, i) => {
        const started = performance.now();
        socket.emit(event, data, (ackData: unknown) => {
          const delivery = deliveries[i]!;
          delivery.status = DeliveryStatus.DELIVERY_STATUS_ACKED;
          delivery.ackData = ackData;
          delivery.latencyUs = Math.round((performance.now() - started) * 1000);
          if (--remaining === 0) reply();
        });
      });
    },
    listSessions: (_call, callback) => callback({ code: status.UNIMPLEMENTED }),
    disconnectSessions: (_call, callback) => callback({ code: status.UNIMPLEMENTED }),
    watchPresence: (call) => call.end(),
    pushToUsers: (call) => call.emit('error', { code: status.UNIMPLEMENTED }),
    listInbox: (_call, callback) => callback({ code: status.UNIMPLEMENTED }),
    deleteInbox: (_call, callback) => callback({ code: status.UNIMPLEMENTED }),
    getMessage: (_call, callback) => callback({ code: status.UNIMPLEMENTED }),
    watchReceipts: (call) => call.end(),
  };
  const grpc = new GrpcServer();
  grpc.addService(PushServiceService, handlers);
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpc.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    grpcAddress: `127.0.0.1:${grpcPort}`,
    httpUrl: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    io,
    async stop() {
      grpc.forceShutdown();
      await new Promise<void>((resolve) => io.close(() => resolve()));
      redis?.disconnect();
    },
  };
}
