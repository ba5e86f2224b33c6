/**
 * Splits a RESP2/RESP3 byte stream (what a Redis server sends) into whole top-level frames, fed
 * chunk by chunk as TCP delivers them: a frame may span chunks and a chunk may hold many frames.
 * The relay needs whole frames so it can drop a pub/sub message without cutting another reply.
 *
 * Only framing is parsed, not values. RESP3 streamed strings and aggregates (`$?`, `*?`) are not
 * supported: Redis never sends them, and guessing would desync the stream, so they throw.
 */

const CR = 0x0d;
const LF = 0x0a;

/** Types whose whole value is the rest of their line. */
const LINE_TYPES = new Set(['+', '-', ':', '_', ',', '#', '(']);
/** Types with a byte length on their line, then that many bytes and CRLF. */
const BLOB_TYPES = new Set(['$', '=', '!']);
/** Aggregate types, with how many child items each counted element stands for. */
const AGGREGATE_WIDTH: Readonly<Record<string, number>> = { '*': 1, '>': 1, '~': 1, '%': 2 };

export class RespProtocolError extends Error {}

export class RespFrameSplitter {
  /** Bytes of the frame being read (and anything after it); a frame always starts at offset 0. */
  private pending: Buffer = Buffer.alloc(0);
  /** Where parsing resumes inside `pending`: everything before it belongs to the current frame. */
  private pos = 0;
  /**
   * Items still missing from each open aggregate, innermost last. Kept across pushes so a large
   * frame arriving in many chunks is scanned once, not from its start on every chunk.
   */
  private readonly open: number[] = [];

  /** Bytes received that do not yet make a whole frame. */
  get bufferedBytes(): number {
    return this.pending.length;
  }

  /** Feeds the next chunk of the stream; returns the frames it completed, in order (often none). */
  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Buffer[] = [];
    while (this.pos < this.pending.length) {
      const itemEnd = this.readItem();
      if (itemEnd === undefined) break;
      this.pos = itemEnd;
      if (this.open.length > 0) continue;
      frames.push(this.pending.subarray(0, this.pos));
      this.pending = this.pending.subarray(this.pos);
      this.pos = 0;
    }
    return frames;
  }

  /**
   * Reads the item header at `pos`; returns where parsing continues (after the item, or after an
   * aggregate's header), or undefined if more bytes are needed. Closes finished aggregates.
   */
  private readItem(): number | undefined {
    const buf = this.pending;
    const lineEnd = buf.indexOf('\r\n', this.pos + 1);
    if (lineEnd < 0) return undefined;
    const type = String.fromCharCode(buf[this.pos]!);
    const afterLine = lineEnd + 2;
    if (LINE_TYPES.has(type)) return this.closeItem(afterLine);
    const count = this.lengthOf(type, buf.toString('latin1', this.pos + 1, lineEnd));
    if (BLOB_TYPES.has(type)) {
      // A RESP2 null bulk string ($-1) has no payload; a blob's payload may itself hold CRLF.
      if (count < 0) return this.closeItem(afterLine);
      const end = afterLine + count + 2;
      if (buf.length < end) return undefined;
      if (buf[end - 2] !== CR || buf[end - 1] !== LF) throw new RespProtocolError(`${type}${count} payload not followed by CRLF`);
      return this.closeItem(end);
    }
    // An attribute (`|n`) is n key/value pairs followed by the value it annotates: one item of 2n+1.
    const items = type === '|' ? 2 * count + 1 : count * (AGGREGATE_WIDTH[type] ?? 0);
    if (items <= 0) return this.closeItem(afterLine); // empty, or a RESP2 null array (*-1)
    this.open.push(items);
    return afterLine;
  }

  private lengthOf(type: string, text: string): number {
    if (!BLOB_TYPES.has(type) && AGGREGATE_WIDTH[type] === undefined && type !== '|') {
      throw new RespProtocolError(`unknown RESP type byte ${JSON.stringify(type)} (stream out of sync?)`);
    }
    if (!/^-?\d+$/.test(text)) throw new RespProtocolError(`bad length ${JSON.stringify(text)} after ${type} (streamed types unsupported)`);
    return Number(text);
  }

  /** An item ended at `end`: count it against its aggregate, closing every aggregate it completes. */
  private closeItem(end: number): number {
    while (this.open.length > 0) {
      const left = this.open.pop()! - 1;
      if (left > 0) {
        this.open.push(left);
        break;
      }
      // That aggregate is now complete: it is itself one item of the one around it.
    }
    return end;
  }
}

// The heads of pub/sub frames as Redis writes them: kind as a bulk string right after the header.
const MESSAGE_HEADS = ['*3\r\n$7\r\nmessage\r\n', '*3\r\n$8\r\nsmessage\r\n', '*4\r\n$8\r\npmessage\r\n'].map((h) => Buffer.from(h));
const SUBSCRIBED_HEADS = ['*3\r\n$9\r\nsubscribe\r\n', '*3\r\n$10\r\nssubscribe\r\n', '*3\r\n$10\r\npsubscribe\r\n'].map((h) =>
  Buffer.from(h),
);

/** `frame` starts with `head`, or with `head` whose leading `*` is RESP3's push type `>`. */
function startsWithHead(frame: Buffer, head: Buffer): boolean {
  if (frame.length < head.length || (frame[0] !== 0x2a && frame[0] !== 0x3e)) return false;
  return frame.compare(head, 1, head.length, 1, head.length) === 0;
}

/**
 * Whether a whole frame is a pub/sub message delivery (message, smessage or pmessage), as a RESP2
 * array or a RESP3 push. A RESP3 push is never a command reply; a RESP2 array of the same shape
 * can be one (LRANGE of a list holding "message"), so callers should only trust an array one on a
 * connection that has subscribed (see isSubscribeConfirmation).
 */
export function isPubSubMessage(frame: Buffer): boolean {
  return MESSAGE_HEADS.some((head) => startsWithHead(frame, head));
}

/** Whether the frame is RESP3 push (`>`) rather than a RESP2 array. */
export function isPushFrame(frame: Buffer): boolean {
  return frame[0] === 0x3e;
}

/** Whether a frame confirms a subscribe, ssubscribe or psubscribe (RESP2 array or RESP3 push). */
export function isSubscribeConfirmation(frame: Buffer): boolean {
  return SUBSCRIBED_HEADS.some((head) => startsWithHead(frame, head));
}
