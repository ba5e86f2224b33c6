import { describe, expect, it } from 'vitest';
import { ClientBacklog, type EngineConnection } from '../../src/edge/client-backlog.js';

/** engine.io's connection as ClientBacklog reads it: packets appended to `writeBuffer`, the array handed over whole and replaced on flush. */
function connection(bufferedAmount = 0): EngineConnection & { writeBuffer: { data?: unknown }[]; flush(): void } {
  return {
    writeBuffer: [],
    transport: { name: 'websocket', socket: { bufferedAmount, terminate: () => undefined } },
    close: () => undefined,
    flush() {
      this.writeBuffer = [];
    },
  };
}

describe('ClientBacklog', () => {
  it('counts what the write buffer and the websocket hold', () => {
    const conn = connection(100);
    const backlog = new ClientBacklog(conn);
    expect(backlog.bytes).toBe(100);
    conn.writeBuffer.push({ data: '42["notice",{}]' }, { data: new Uint8Array(10) }, {});
    expect(backlog.bytes).toBe(100 + 15 + 10);
  });

  it('adds only packets appended since the last check, and starts over when engine.io hands the buffer over', () => {
    const conn = connection();
    const backlog = new ClientBacklog(conn);
    conn.writeBuffer.push({ data: 'aaaa' });
    expect(backlog.bytes).toBe(4);
    conn.writeBuffer.push({ data: 'bb' });
    expect(backlog.bytes).toBe(6);
    conn.flush();
    expect(backlog.bytes).toBe(0);
    // A new array that grew past the old one's length is counted from its start, not from the old count.
    conn.writeBuffer.push({ data: 'c' }, { data: 'd' }, { data: 'e' });
    expect(backlog.bytes).toBe(3);
    conn.flush();
    conn.writeBuffer.push({ data: 'ffff' });
    expect(backlog.bytes).toBe(4);
  });
});
