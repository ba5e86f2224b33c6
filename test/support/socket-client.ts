import { io, type Socket } from 'socket.io-client';

export interface ConnectOptions {
  readonly token?: string;
  readonly clientType?: string;
  readonly query?: Record<string, string>;
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

export function openClient(httpUrl: string, options: ConnectOptions): Socket {
  const auth: Record<string, string> = {};
  if (options.token !== undefined) auth.token = options.token;
  if (options.clientType !== undefined) auth.clientType = options.clientType;
  return io(httpUrl, {
    auth,
    query: options.query ?? {},
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
