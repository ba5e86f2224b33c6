import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** A websocket opened by hand to the Socket.IO path: it sends nothing after the upgrade unless told to. */
export interface RawWebSocket {
  /** The HTTP status line the server answered the upgrade with. */
  readonly statusLine: string;
  readonly socket: Socket;
  /** Resolves when the server sends a websocket close frame or the TCP connection ends. */
  readonly closed: Promise<void>;
}

/**
 * Opens a websocket to the engine.io endpoint at the TCP level (no client library) and answers
 * nothing: the connection a client makes that never sends the Socket.IO CONNECT packet.
 */
export function rawWebSocket(httpUrl: string, headers: Record<string, string> = {}): Promise<RawWebSocket> {
  const url = new URL(httpUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    let received = Buffer.alloc(0);
    let answered = false;
    let markClosed: () => void = () => {};
    const closed = new Promise<void>((done) => (markClosed = done));
    socket.on('error', () => markClosed());
    socket.on('close', () => {
      markClosed();
      if (!answered) reject(new Error('connection closed before the upgrade was answered'));
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (!answered) {
        const end = received.indexOf('\r\n\r\n');
        if (end === -1) return;
        answered = true;
        const statusLine = received.subarray(0, received.indexOf('\r\n')).toString();
        received = received.subarray(end + 4);
        resolve({ statusLine, socket, closed });
      }
      // A frame whose first byte is FIN + opcode 8 is the server's close frame.
      if (received.includes(0x88)) markClosed();
    });
    const lines = [
      `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1`,
      `Host: ${url.host}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    ];
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  });
}
