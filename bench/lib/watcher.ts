/**
 * A presence-watcher process: opens WatchPresence streams to one node and records, per event, the
 * lag from the event's `at` (the registry change) to its arrival here. Kept out of the bench
 * process so 100 streams' reading does not share a CPU budget with the bench's own clients.
 *
 * It speaks gRPC over node:http2 by hand (a POST with one length-prefixed request, then
 * length-prefixed response messages, then trailers with grpc-status) and reads only each event's
 * `at`: at 80,000 messages/s grpc-js's client and a full decode cost more than the node being
 * measured, the way socket.io-client would starve the server in the device processes.
 */
import { type ClientHttp2Session, type ClientHttp2Stream, connect, type IncomingHttpHeaders } from 'node:http2';
import { PushServiceService, WatchPresenceRequest } from '../../src/gen/pushgate/v1/push_service.js';
import { serve } from './children.js';
import { profilerOps } from './profiler.js';

interface Stream {
  readonly call: ClientHttp2Stream;
  events: number;
  ended: string | undefined;
}

let sessions: ClientHttp2Session[] = [];
let streams: Stream[] = [];
let lags: number[] = [];
/** Worst lag per second of arrival: shows whether a tail is a warm-up, a periodic stall or a backlog. */
let worstBySecond = new Map<number, number>();

function record(lag: number): void {
  lags.push(lag);
  const second = Math.floor(Date.now() / 1000);
  if (lag > (worstBySecond.get(second) ?? -1)) worstBySecond.set(second, lag);
}

/**
 * The connections the streams are spread over, round robin: BENCH_PRESENCE_CONNECTIONS (default 1,
 * every stream on one connection). On one connection HTTP/2's connection window (64 KB unless
 * BENCH_PRESENCE_WINDOW sets it) is shared by all streams, so what this process reads in a turn
 * bounds what the node can send to all of them; separate subscribers would each have their own.
 */
function open(address: string): ClientHttp2Session[] {
  const count = Number(process.env.BENCH_PRESENCE_CONNECTIONS ?? 1);
  const window = process.env.BENCH_PRESENCE_WINDOW === undefined ? undefined : Number(process.env.BENCH_PRESENCE_WINDOW);
  return Array.from({ length: count }, () => {
    const session = connect(`http://${address}`, window === undefined ? {} : { settings: { initialWindowSize: window } });
    if (window !== undefined) session.on('connect', () => session.setLocalWindowSize(window));
    session.on('error', () => {});
    return session;
  });
}

/** One WatchPresence call for every user, live only; counts its events and records their lag. */
function watchOn(session: ClientHttp2Session, request: Buffer): Stream {
  const call = session.request({
    ':method': 'POST',
    ':path': PushServiceService.watchPresence.path,
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  const stream: Stream = { call, events: 0, ended: undefined };
  call.end(request);
  // Messages may span DATA chunks: the unread tail of the last chunk waits for the next.
  let pending: Buffer | undefined;
  call.on('data', (chunk: Buffer) => {
    const data = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
    let at = 0;
    while (data.length - at >= 5) {
      const length = data.readUInt32BE(at + 1);
      if (data.length - at - 5 < length) break;
      eachEventAt(data, at + 5, at + 5 + length, (atMs) => {
        stream.events++;
        if (atMs >= 0) record(Date.now() - atMs);
      });
      at += 5 + length;
    }
    pending = at === data.length ? undefined : data.subarray(at);
  });
  // A refusal comes as headers alone (trailers-only), an end after messages as trailers.
  const onStatus = (headers: IncomingHttpHeaders): void => {
    const status = headers['grpc-status'];
    if (status !== undefined && status !== '0') stream.ended = `${String(status)} ${String(headers['grpc-message'] ?? '')}`;
  };
  call.on('response', onStatus);
  call.on('trailers', onStatus);
  call.on('error', (err: Error) => (stream.ended ??= err.message));
  call.on('close', () => (stream.ended ??= 'ended'));
  return stream;
}

/**
 * Calls `onAt` with the `at` (ms, -1 if absent) of every event in one WatchPresenceResponse —
 * `event` (field 1) or each of `events` (field 2, with max_events_per_message) — read straight
 * from the bytes without allocating: decoding every event whole (session, Dates, strings) took a
 * quarter of this process's CPU, and a reader object per nested message still a seventh.
 */
function eachEventAt(bytes: Buffer, start: number, end: number, onAt: (atMs: number) => void): void {
  let pos = start;
  const varint = (): number => {
    let [value, scale, byte] = [0, 1, 0x80];
    while (byte & 0x80) {
      byte = bytes[pos++]!;
      value += (byte & 0x7f) * scale;
      scale *= 128;
    }
    return value;
  };
  /** Moves into length-delimited field `field` of the message in [pos, end); returns its end, or -1. */
  const enter = (field: number, end: number): number => {
    while (pos < end) {
      const tag = varint();
      const wireType = tag & 7;
      if (wireType === 0) varint();
      else if (wireType === 1) pos += 8;
      else if (wireType === 5) pos += 4;
      else if (wireType === 2) {
        const length = varint();
        if (tag >>> 3 === field) return pos + length;
        pos += length;
      } else return -1;
    }
    return -1;
  };
  const atOf = (eventEnd: number): number => {
    const atEnd = enter(5, eventEnd);
    if (atEnd < 0) return -1;
    let [seconds, nanos] = [0, 0];
    while (pos < atEnd) {
      const tag = varint();
      if (tag === 0x08) seconds = varint();
      else if (tag === 0x10) nanos = varint();
      else return -1;
    }
    return seconds * 1000 + Math.floor(nanos / 1e6);
  };
  while (pos < end) {
    const tag = varint();
    if (tag !== 0x0a && tag !== 0x12) return;
    const eventEnd = varint() + pos;
    onAt(atOf(eventEnd));
    pos = eventEnd;
  }
}

serve({
  watch(body) {
    sessions = open(String(body.grpcAddress));
    const message = WatchPresenceRequest.encode(
      WatchPresenceRequest.fromPartial({ maxEventsPerMessage: Number(body.perMessage ?? 0) }),
    ).finish();
    const request = Buffer.alloc(5 + message.length);
    request.writeUInt32BE(message.length, 1);
    request.set(message, 5);
    for (let i = 0; i < Number(body.count); i++) streams.push(watchOn(sessions[i % sessions.length]!, request));
    return {};
  },
  reset() {
    lags = [];
    worstBySecond = new Map();
    for (const s of streams) s.events = 0;
    return {};
  },
  /** The worst lag of each second, oldest first. */
  timeline: () => ({ worst: [...worstBySecond.values()] }),
  /** Cheap enough to poll while events still arrive (stats sorts every lag). */
  progress() {
    return { minPerStream: Math.min(...streams.map((s) => s.events)), cutOff: streams.filter((s) => s.ended !== undefined).length };
  },
  stats() {
    const sorted = lags.sort((a, b) => a - b);
    const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
    const counts = streams.map((s) => s.events);
    return {
      events: sorted.length,
      p50: at(0.5),
      p99: at(0.99),
      max: sorted[sorted.length - 1] ?? Number.NaN,
      minPerStream: Math.min(...counts),
      maxPerStream: Math.max(...counts),
      cutOff: streams.filter((s) => s.ended !== undefined).length,
    };
  },
  ...profilerOps(),
  close() {
    for (const s of streams) s.call.close();
    streams = [];
    for (const session of sessions) session.close();
    sessions = [];
    return {};
  },
});
process.send!({ op: 'ready' });
