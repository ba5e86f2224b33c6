import type { Socket } from 'socket.io';

/**
 * Bytes queued on this node for one client connection and not yet handed to the kernel: packets
 * engine.io holds in its write buffer (the transport is busy: the previous write never finished,
 * or a long-polling client has not come back for them), plus what the websocket itself still holds
 * (ws `bufferedAmount`). A client that keeps its connection open but stops reading makes both grow
 * without end; this is what PUSHGATE_MAX_CLIENT_BUFFER_BYTES bounds.
 *
 * The write buffer is tracked as it changes (each packet's size added when engine.io creates it,
 * the total reset when engine.io hands the buffer to the transport), so reading it costs O(1)
 * however many packets are queued. A string packet counts its length: exact for the ASCII JSON
 * most pushes are, and what V8 stores a one-byte string in.
 */
export class ClientBacklog {
  private writeBufferBytes = 0;

  constructor(private readonly conn: EngineConnection) {
    conn.on('packetCreate', (packet: EnginePacket) => {
      this.writeBufferBytes += sizeOf(packet.data);
    });
    // engine.io emits 'flush' with the buffer it is about to hand over whole, then empties it.
    conn.on('flush', () => {
      this.writeBufferBytes = 0;
    });
  }

  static of(socket: Socket): ClientBacklog {
    return new ClientBacklog(socket.conn as unknown as EngineConnection);
  }

  get bytes(): number {
    const transport = this.conn.transport;
    const ws = transport.name === 'websocket' ? transport.socket : undefined;
    return this.writeBufferBytes + (ws?.bufferedAmount ?? 0);
  }

  /**
   * Drops the connection now, with whatever is queued for it: an orderly close would wait for the
   * queue to drain, which is what a client that does not read never lets happen.
   */
  destroy(): void {
    const transport = this.conn.transport;
    if (transport.name === 'websocket') transport.socket?.terminate();
    this.conn.close(true);
  }
}

/** The parts of engine.io's Socket (socket.conn) this relies on; engine.io does not type them. */
export interface EngineConnection {
  on(event: 'packetCreate', listener: (packet: EnginePacket) => void): unknown;
  on(event: 'flush', listener: () => void): unknown;
  readonly transport: { readonly name: string; readonly socket?: { readonly bufferedAmount: number; terminate(): void } };
  close(discard?: boolean): unknown;
}

interface EnginePacket {
  readonly data?: unknown;
}

function sizeOf(data: unknown): number {
  if (typeof data === 'string') return data.length;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data.byteLength;
  return 0;
}
