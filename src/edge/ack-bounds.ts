import type { ErrorCode } from '../errors.js';

export interface AckLimits {
  /** PUSHGATE_MAX_ACK_BYTES. */
  readonly maxAckBytes: number;
  /** PUSHGATE_MAX_ACK_DEPTH. */
  readonly maxAckDepth: number;
}

/** Why an ack was not taken: the code and a message for the delivery's `error`. */
export interface AckRefusal {
  readonly code: Extract<ErrorCode, 'ack_too_large' | 'ack_too_deep' | 'ack_binary'>;
  readonly message: string;
}

// Approximate encoded sizes in google.protobuf.Value (tag and length bytes included): what an ack
// costs in the PushToUser reply. Exact to within a few bytes a value, which is all a bound needs.
const NUMBER_BYTES = 10;
const SCALAR_BYTES = 2;
const CONTAINER_BYTES = 4;
const ENTRY_BYTES = 6;

/**
 * Checks what a client acked with, before it is put into the PushToUser reply: its estimated
 * encoded size, its nesting depth (`{}` and `[]` are one level each, a scalar none, as for pushed
 * data) and binary data, which an ack may not hold (Socket.IO would hand over a Buffer, which no
 * JSON value can represent; the reply would carry it as a map of byte indexes, ten times larger).
 *
 * Iterative, with an explicit stack, and it stops at the first limit crossed: an ack of any shape
 * costs at most about `maxAckBytes` of work and never the call stack. Socket.IO's own message
 * limit (maxHttpBufferSize, 1 MB) bounds what reaches here at all.
 */
export function checkAck(value: unknown, limits: AckLimits): AckRefusal | undefined {
  const { maxAckBytes, maxAckDepth } = limits;
  const values: unknown[] = [value];
  const depths: number[] = [0];
  let bytes = 0;
  while (values.length > 0) {
    const current = values.pop();
    const depth = depths.pop()!;
    if (typeof current === 'string') bytes += SCALAR_BYTES + Buffer.byteLength(current);
    else if (typeof current === 'number') bytes += NUMBER_BYTES;
    else if (current === null || current === undefined || typeof current === 'boolean') bytes += SCALAR_BYTES;
    else if (current instanceof ArrayBuffer || ArrayBuffer.isView(current)) {
      return { code: 'ack_binary', message: 'ack_binary: the client acked with binary data, which an ack may not carry' };
    } else if (typeof current === 'object') {
      if (depth + 1 > maxAckDepth) {
        return {
          code: 'ack_too_deep',
          message: `ack_too_deep: the client acked with a value nested more than ${maxAckDepth} levels deep (PUSHGATE_MAX_ACK_DEPTH)`,
        };
      }
      bytes += CONTAINER_BYTES;
      if (Array.isArray(current)) {
        for (const item of current) {
          values.push(item);
          depths.push(depth + 1);
        }
      } else {
        for (const [key, item] of Object.entries(current)) {
          bytes += ENTRY_BYTES + Buffer.byteLength(key);
          values.push(item);
          depths.push(depth + 1);
        }
      }
    } else {
      bytes += SCALAR_BYTES;
    }
    if (bytes > maxAckBytes) {
      return {
        code: 'ack_too_large',
        message: `ack_too_large: the client acked with more than ${maxAckBytes} bytes (PUSHGATE_MAX_ACK_BYTES)`,
      };
    }
  }
  return undefined;
}
