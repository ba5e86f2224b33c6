/**
 * The protobuf wire primitives the hand-written response encoders (push-encoding.ts) need, in one
 * pass: a nested message is begun with one byte kept for its length and ended by writing the
 * length there, moving its content up in the rare case the length takes more. Every string is
 * read once (a sizing pass first would read each twice, and the session strings of a batch are
 * cold in cache). Only what those messages use: varints of non-negative integers, doubles and
 * UTF-8 strings.
 */

/** Bytes of the varint of `n`, an integer in [0, 2^53). */
export function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let size = 4;
  for (let rest = Math.floor(n / 0x10000000); rest > 0; rest = Math.floor(rest / 0x80)) size++;
  return size;
}

/**
 * A growing buffer reused message after message: `take()` copies out what was written. Writes
 * check room first; a string is given room for its worst case, three bytes a UTF-16 unit.
 */
export class WireWriter {
  private buf: Buffer;
  pos = 0;

  constructor(initialBytes = 4096) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Starts a new message. */
  reset(): void {
    this.pos = 0;
  }

  /** The message written since `reset()`, in a buffer of its own. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }

  private room(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + bytes));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  varint(n: number): void {
    this.room(10);
    const buf = this.buf;
    while (n > 0x7fffffff) {
      buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    while (n > 0x7f) {
      buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[this.pos++] = n;
  }

  /** A one-byte tag and a varint. */
  varintField(tag: number, n: number): void {
    this.room(1);
    this.buf[this.pos++] = tag;
    this.varint(n);
  }

  /** A one-byte tag and a length known in advance (the content follows). */
  delimited(tag: number, size: number): void {
    this.room(1);
    this.buf[this.pos++] = tag;
    this.varint(size);
  }

  /** Starts a nested message under a one-byte tag; returns where its content starts, for `end`. */
  begin(tag: number): number {
    this.room(2);
    this.buf[this.pos] = tag;
    this.pos += 2;
    return this.pos;
  }

  /** Ends the message begun at `start`: its length goes in the byte kept for it, or in more, moving the content up. */
  end(start: number): void {
    const size = this.pos - start;
    if (size < 0x80) {
      this.buf[start - 1] = size;
      return;
    }
    const extra = varintSize(size) - 1;
    this.room(extra);
    this.buf.copyWithin(start + extra, start, this.pos);
    this.pos = start - 1;
    this.varint(size);
    this.pos += size;
  }

  double(tag: number, value: number): void {
    this.room(9);
    this.buf[this.pos++] = tag;
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  /** A string field, written even when empty (callers skip empty ones where proto3 omits them). */
  string(tag: number, s: string): void {
    const length = s.length;
    // Tag, length (at most 5 bytes) and content: varint() below then never needs to grow the buffer.
    this.room(length * 3 + 16);
    const buf = this.buf;
    buf[this.pos++] = tag;
    if (length < 0x80) {
      // Optimistically ASCII: one length byte, copied as is; anything else is written again below.
      let pos = this.pos + 1;
      let i = 0;
      for (; i < length; i++) {
        const code = s.charCodeAt(i);
        if (code > 0x7f) break;
        buf[pos++] = code;
      }
      if (i === length) {
        buf[this.pos] = length;
        this.pos = pos;
        return;
      }
    }
    const size = Buffer.byteLength(s, 'utf8');
    this.varint(size);
    this.pos += this.buf.write(s, this.pos, size, 'utf8');
  }

  /** A string field omitted when empty (proto3's default). */
  stringField(tag: number, s: string): void {
    if (s !== '') this.string(tag, s);
  }
}
