import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  isPubSubMessage,
  isPushFrame,
  isSubscribeConfirmation,
  RespFrameSplitter,
  RespProtocolError,
} from '../../reliability/lib/resp-frames.js';

// The RESP frame splitter of the reliability relay: whatever way TCP chunks a stream of frames,
// it must give back exactly those frames, or the relay would cut replies when it drops messages.

const crlf = '\r\n';
const bulk = (payload: Buffer | string): Buffer => {
  const bytes = Buffer.from(payload);
  return Buffer.concat([Buffer.from(`$${bytes.length}${crlf}`), bytes, Buffer.from(crlf)]);
};
const aggregate = (type: string, items: Buffer[], count = items.length): Buffer =>
  Buffer.concat([Buffer.from(`${type}${count}${crlf}`), ...items]);

const lineText = fc.string({ maxLength: 12 }).map((s) => s.replace(/[\r\n]/g, '_'));
const blob = fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes));
const blobWithCrlf = fc.tuple(blob, blob).map(([a, b]) => Buffer.concat([a, Buffer.from(crlf), b]));

/** One encoded RESP2/RESP3 value of any type, aggregates nested a few levels deep. */
const { value: respValue } = fc.letrec<{ value: Buffer; leaf: Buffer; node: Buffer }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('node')),
  leaf: fc.oneof(
    lineText.map((s) => Buffer.from(`+${s}${crlf}`)),
    lineText.map((s) => Buffer.from(`-ERR ${s}${crlf}`)),
    fc.integer().map((n) => Buffer.from(`:${n}${crlf}`)),
    fc.oneof(blob, blobWithCrlf).map(bulk),
    fc
      .constantFrom('$-1', '*-1', '_', '#t', '#f', ',3.25', ',inf', '(3492890328409238509324850943850943825024385')
      .map((s) => Buffer.from(`${s}${crlf}`)),
    blobWithCrlf.map((b) => Buffer.concat([Buffer.from(`=${b.length + 4}${crlf}txt:`), b, Buffer.from(crlf)])),
    blob.map((b) => Buffer.concat([Buffer.from(`!${b.length}${crlf}`), b, Buffer.from(crlf)])),
  ),
  node: fc.oneof(
    fc.tuple(fc.constantFrom('*', '>', '~'), fc.array(tie('value'), { maxLength: 4 })).map(([type, items]) => aggregate(type, items)),
    fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3 }).map((pairs) => aggregate('%', pairs.flat(), pairs.length)),
    // An attribute: n pairs, then the value it annotates (part of the same frame).
    fc
      .tuple(fc.array(fc.tuple(tie('leaf'), tie('value')), { maxLength: 2 }), tie('value'))
      .map(([pairs, annotated]) => Buffer.concat([aggregate('|', pairs.flat(), pairs.length), annotated])),
  ),
}));

/** Cuts `stream` at the given positions (any order, repeats allowed) into chunks. */
function chunked(stream: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of [...points, stream.length]) {
    chunks.push(stream.subarray(start, point));
    start = point;
  }
  return chunks;
}

function split(chunks: Buffer[]): { frames: Buffer[]; splitter: RespFrameSplitter } {
  const splitter = new RespFrameSplitter();
  return { frames: chunks.flatMap((chunk) => splitter.push(chunk)), splitter };
}

const hex = (frames: Buffer[]): string[] => frames.map((frame) => frame.toString('hex'));

describe('RespFrameSplitter', () => {
  it('gives back exactly the frames, whatever the chunking', () => {
    fc.assert(
      fc.property(fc.array(respValue, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, cuts) => {
        const { frames: out, splitter } = split(chunked(Buffer.concat(frames), cuts));
        expect(hex(out)).toEqual(hex(frames));
        expect(splitter.bufferedBytes).toBe(0);
      }),
      { numRuns: 400 },
    );
  });

  it('gives back exactly the frames when fed byte by byte', () => {
    fc.assert(
      fc.property(fc.array(respValue, { minLength: 1, maxLength: 5 }), (frames) => {
        const stream = Buffer.concat(frames);
        const bytes = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
        expect(hex(split(bytes).frames)).toEqual(hex(frames));
      }),
      { numRuns: 150 },
    );
  });

  it('keeps a frame back until its last byte, then returns it alone', () => {
    // Nested arrays, a bulk string holding CRLF and something that looks like a frame, a null bulk.
    const frame = aggregate('*', [aggregate('*', [bulk('a\r\n*1\r\n:1\r\n'), Buffer.from('$-1\r\n')]), Buffer.from(':7\r\n')]);
    const next = Buffer.from('+OK\r\n');
    const splitter = new RespFrameSplitter();
    for (let i = 0; i < frame.length - 1; i++) expect(splitter.push(frame.subarray(i, i + 1))).toEqual([]);
    expect(splitter.bufferedBytes).toBe(frame.length - 1);
    expect(hex(splitter.push(Buffer.concat([frame.subarray(-1), next.subarray(0, 2)])))).toEqual(hex([frame]));
    expect(hex(splitter.push(next.subarray(2)))).toEqual(hex([next]));
  });

  it('splits RESP3 push frames from the replies around them', () => {
    const push = aggregate('>', [bulk('smessage'), bulk('bus:node-b'), bulk('{"x":"\r\n"}')]);
    const reply = aggregate('%', [bulk('server'), bulk('redis'), bulk('proto'), Buffer.from(':3\r\n')], 2);
    const { frames } = split([Buffer.concat([reply, push, reply])]);
    expect(hex(frames)).toEqual(hex([reply, push, reply]));
  });

  it('throws on a byte that starts no RESP type, rather than guessing', () => {
    expect(() => new RespFrameSplitter().push(Buffer.from('hello\r\n'))).toThrow(RespProtocolError);
    expect(() => new RespFrameSplitter().push(Buffer.from('$?\r\n;4\r\nabcd\r\n;0\r\n'))).toThrow(/streamed/);
    expect(() => new RespFrameSplitter().push(Buffer.from('$2\r\nabcd\r\n'))).toThrow(/CRLF/);
  });
});

describe('pub/sub frame kinds', () => {
  const message = aggregate('*', [bulk('message'), bulk('ch'), bulk('hi')]);
  const smessage = aggregate('*', [bulk('smessage'), bulk('ch'), bulk('hi')]);
  const pmessage = aggregate('*', [bulk('pmessage'), bulk('c*'), bulk('ch'), bulk('hi')]);
  const pushed = aggregate('>', [bulk('smessage'), bulk('ch'), bulk('hi')]);
  const confirmation = aggregate('*', [bulk('ssubscribe'), bulk('ch'), Buffer.from(':1\r\n')]);

  it('tells message deliveries, RESP2 and RESP3, from replies', () => {
    for (const frame of [message, smessage, pmessage, pushed]) expect(isPubSubMessage(frame)).toBe(true);
    expect(isPushFrame(pushed)).toBe(true);
    expect(isPushFrame(smessage)).toBe(false);
    const replies = [
      confirmation,
      aggregate('*', [bulk('pong'), bulk('')]),
      aggregate('*', [bulk('message'), bulk('ch')]), // a two-element LRANGE reply
      aggregate('*', [bulk('messages'), bulk('ch'), bulk('hi')]),
      bulk('smessage'),
      Buffer.from('+OK\r\n'),
    ];
    for (const frame of replies) expect(isPubSubMessage(frame)).toBe(false);
  });

  it('tells subscribe confirmations', () => {
    expect(isSubscribeConfirmation(confirmation)).toBe(true);
    expect(isSubscribeConfirmation(aggregate('>', [bulk('subscribe'), bulk('ch'), Buffer.from(':1\r\n')]))).toBe(true);
    expect(isSubscribeConfirmation(aggregate('*', [bulk('sunsubscribe'), bulk('ch'), Buffer.from(':0\r\n')]))).toBe(false);
    expect(isSubscribeConfirmation(smessage)).toBe(false);
  });
});
