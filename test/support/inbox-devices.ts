import type { Socket } from 'socket.io-client';
import { openClient } from './socket-client.js';
import { signToken } from './tokens.js';

/** What a client received with one notice: its data, its meta (clients with metadata) and its ack callback. */
export interface Seen {
  readonly data: unknown;
  readonly meta: { messageId: string; sentAt: number; replay: boolean; attempt: number } | undefined;
  /** How many arguments the handler got: (data, meta, ack) is 3, a legacy (data, ack) is 2. */
  readonly args: number;
  readonly ack: (reply?: unknown) => void;
}

export interface Device {
  readonly socket: Socket;
  readonly userId: string;
  readonly clientType: string;
  readonly seen: Seen[];
}

export interface DeviceOptions {
  /** Opt into metadata (auth.meta): notices arrive as (data, meta, ack). Default true. */
  readonly meta?: boolean;
  /** Ack each notice as it arrives. Default false: the test acks through `seen[i].ack`. */
  readonly autoAck?: boolean;
}

export interface InboxDevices {
  /**
   * Connects a v4 client to `httpUrl` whose `notice` handler is in place before the handshake, as a
   * real app's is: stored messages are replayed right after connect. Rejects on connect_error or
   * after `CONNECT_TIMEOUT_MS`.
   */
  device(httpUrl: string, userId: string, clientType: string, options?: DeviceOptions): Promise<Device>;
  /** Closes every client opened so far; for afterEach. */
  closeAll(): void;
}

const CONNECT_TIMEOUT_MS = 5000;

export function inboxDevices(): InboxDevices {
  const sockets: Socket[] = [];
  return {
    async device(httpUrl, userId, clientType, { meta = true, autoAck = false } = {}) {
      const socket = openClient(httpUrl, { token: await signToken(userId), clientType, meta });
      sockets.push(socket);
      const seen: Seen[] = [];
      socket.on('notice', (...args: unknown[]) => {
        const ack = args[args.length - 1] as (reply?: unknown) => void;
        seen.push({ data: args[0], meta: meta ? (args[1] as Seen['meta']) : undefined, args: args.length, ack });
        if (autoAck) ack({ by: clientType });
      });
      let timer: NodeJS.Timeout | undefined;
      try {
        await new Promise<void>((resolve, reject) => {
          timer = setTimeout(
            () => reject(new Error(`${userId}/${clientType} did not connect to ${httpUrl} in ${CONNECT_TIMEOUT_MS} ms`)),
            CONNECT_TIMEOUT_MS,
          );
          socket.once('connect', () => resolve());
          socket.once('connect_error', reject);
        });
      } finally {
        clearTimeout(timer);
      }
      return { socket, userId, clientType, seen };
    },
    closeAll() {
      for (const socket of sockets.splice(0)) socket.close();
    },
  };
}
