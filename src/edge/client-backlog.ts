import type { Socket } from 'socket.io';

/**
 * Bytes queued on this node for one client connection and not yet handed to the kernel: packets
 * engine.io holds in its write buffer (the transport is busy: the previous write never finished,
 * or a long-polling client has not come back for them), plus what the websocket itself still holds
 * (ws `bufferedAmount`). A client that keeps its connection open but stops reading makes both grow
 * without end; this is what PUSHGATE_MAX_CLIENT_BUFFER_BYTES bounds.
 *
 * Counted when asked, not tracked as packets come and go: listeners on every connection would cost
 * every idle session memory and every packet a call. A reading client's write buffer is empty
 * whenever a push asks (engine.io hands it over at once), so the common check reads one length.
 * A client that stopped reading makes the buffer grow; engine.io only appends to it until it hands
 * it over whole and starts a new array, so the count is kept per array and only packets added
 * since the last check are summed: a push to a stalled client costs O(packets added), not O(queue).
 * A string packet counts its length: exact for the ASCII JSON most pushes are, and what V8 stores
 * a one-byte string in.
 */
export class ClientBacklog {
  /** The write buffer counted so far (undefined while empty, so no handed-over array is kept alive). */
  private counted: readonly EnginePacket[] | undefined;
  private countedPackets = 0;
  private countedBytes = 0;

  constructor(private readonly conn: EngineConnection) {}

  static of(socket: Socket): ClientBacklog {
    return new ClientBacklog(socket.conn as unknown as EngineConnection);
  }

  get bytes(): number {
    const transport = this.conn.transport;
    const ws = transport.name === 'websocket' ? transport.socket : undefined;
    return this.writeBufferBytes() + (ws?.bufferedAmount ?? 0);
  }

  private writeBufferBytes(): number {
    const buffer = this.conn.writeBuffer;
    if (buffer.length === 0) {
      this.counted = undefined;
      return 0;
    }
    if (buffer !== this.counted) {
      this.counted = buffer;
      this.countedPackets = 0;
      this.countedBytes = 0;
    }
    for (let i = this.countedPackets; i < buffer.length; i++) this.countedBytes += sizeOf(buffer[i]!.data);
    this.countedPackets = buffer.length;
    return this.countedBytes;
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

/** The parts of engine.io's Socket (socket.conn) this relies on; engine.io does not type them (`writeBuffer` is private there). */
export interface EngineConnection {
  readonly writeBuffer: readonly EnginePacket[];
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
