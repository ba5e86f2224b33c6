import { io, type Socket } from 'socket.io-client';
import { expect } from 'vitest';
import type { TestNode } from './node.js';
import { signToken } from './tokens.js';
import { waitFor } from './wait.js';

export interface ConnectOptions {
  readonly token?: string;
  readonly clientType?: string;
  readonly query?: Record<string, string>;
  /** Extra headers of the handshake request (X-Forwarded-For, Origin). */
  readonly headers?: Record<string, string>;
  /** Opt into message metadata: pushes then arrive as (data, meta, ack). */
  readonly meta?: boolean;
}

/** A Socket.IO v4 client as an app would open it, connected (resolves on `connect`). */
export async function connectClient(httpUrl: string, options: ConnectOptions): Promise<Socket> {
  const socket = openClient(httpUrl, options);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
  return socket;
}

/** The clients a test node opens for its tests: `connect` as in TestNode, `closeAll` for the node's stop(). */
export interface NodeClients {
  /** Opens a v4 client for `userId` with a valid token and keeps it for `closeAll`. */
  connect(userId: string, clientType: string): Promise<Socket>;
  closeAll(): void;
}

export function nodeClients(httpUrl: string): NodeClients {
  const sockets: Socket[] = [];
  return {
    async connect(userId, clientType) {
      const socket = await connectClient(httpUrl, { token: await signToken(userId), clientType });
      sockets.push(socket);
      return socket;
    },
    closeAll() {
      for (const socket of sockets) socket.close();
    },
  };
}

export function openClient(httpUrl: string, options: ConnectOptions): Socket {
  const auth: Record<string, string | boolean> = {};
  if (options.token !== undefined) auth.token = options.token;
  if (options.clientType !== undefined) auth.clientType = options.clientType;
  if (options.meta !== undefined) auth.meta = options.meta;
  return io(httpUrl, {
    auth,
    query: options.query ?? {},
    ...(options.headers !== undefined && { extraHeaders: options.headers }),
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
}

/** The `connect_error` a refused client receives: its message and the stable code in `data`. */
export async function connectError(httpUrl: string, options: ConnectOptions): Promise<{ message: string; code: string | undefined }> {
  const socket = openClient(httpUrl, options);
  try {
    return await new Promise((resolve, reject) => {
      socket.once('connect', () => reject(new Error('expected the connection to be refused, but it connected')));
      socket.once('connect_error', (err: Error & { data?: { code?: string } }) => resolve({ message: err.message, code: err.data?.code }));
    });
  } finally {
    socket.close();
  }
}

/**
 * Proves nothing else is still on its way to these clients, before a test checks what they received
 * or did not: Socket.IO keeps order on one connection, so once a fire-and-forget marker pushed
 * from `node` after everything else has arrived at every client, whatever was sent before it has
 * arrived too.
 */
export async function drain(node: TestNode, userId: string, clients: readonly Socket[]): Promise<void> {
  const marker = `marker-${Math.random().toString(36).slice(2)}`;
  const arrived = new Set<Socket>();
  for (const socket of clients) socket.once(marker, () => arrived.add(socket));
  const response = await node.client.pushToUser({ userId, event: marker, noAck: true });
  expect(response.deliveries).toHaveLength(clients.length);
  await waitFor(`marker at all ${clients.length} clients`, () => arrived.size === clients.length);
}

/**
 * How many Socket.IO ack callbacks `node` still holds for a session's server-side socket: a test
 * checks that a push awaiting an ack holds one, and that none is left once it was acked, timed out
 * or gave up.
 */
export function serverAcks(node: TestNode, sessionId: string): number {
  const entry = node.app.local.get(sessionId);
  if (entry === undefined) throw new Error(`session ${sessionId} is not held by ${node.app.config.server.nodeId}`);
  return (entry.socket as unknown as { acks: Map<number, unknown> }).acks.size;
}
