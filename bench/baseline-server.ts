import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as GrpcServer, ServerCredentials, status } from '@grpc/grpc-js';
import { Server as IoServer, type Socket } from 'socket.io';
import { DeliveryStatus, type PushServiceServer, PushServiceService, type SessionDelivery } from '../src/gen/pushgate/v1/push_service.js';

/**
 * The floor pushgate's hot path is measured against: the least code that composes grpc-js and
 * Socket.IO into the same PushToUser answer — a Map of sockets by user, one emit per socket, one
 * timer per call, no auth, validation, logging or registry abstraction.
 */
export async function startBaseline(): Promise<{ grpcAddress: string; httpUrl: string; stop(): Promise<void> }> {
  const byUser = new Map<string, Set<Socket>>();
  const connectedAt = new WeakMap<Socket, number>();
  const http: HttpServer = createServer();
  const io = new IoServer(http);
  io.on('connection', (socket) => {
    const userId = String(socket.handshake.auth.userId);
    const sockets = byUser.get(userId) ?? new Set();
    byUser.set(userId, sockets);
    sockets.add(socket);
    connectedAt.set(socket, Date.now());
    socket.on('disconnect', () => sockets.delete(socket));
  });

  const handlers: PushServiceServer = {
    pushToUser(call, callback) {
      const { userId, event, data, ackTimeoutMs } = call.request;
      const sockets = [...(byUser.get(userId) ?? [])];
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
    async stop() {
      grpc.forceShutdown();
      await new Promise<void>((resolve) => io.close(() => resolve()));
    },
  };
}
