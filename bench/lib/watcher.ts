/**
 * A presence-watcher process: opens WatchPresence streams to one node and records, per event, the
 * lag from the event's `at` (the registry change) to its arrival here. Kept out of the bench
 * process so 100 streams' decoding does not share a CPU budget with the bench's own clients.
 */
import { type ClientReadableStream, credentials } from '@grpc/grpc-js';
import { PushServiceClient, type WatchPresenceResponse } from '../../src/gen/pushgate/v1/push_service.js';
import { serve } from './children.js';

let client: PushServiceClient | undefined;
let streams: { call: ClientReadableStream<WatchPresenceResponse>; events: number; ended: string | undefined }[] = [];
let lags: number[] = [];

serve({
  watch(body) {
    client = new PushServiceClient(String(body.grpcAddress), credentials.createInsecure());
    for (let i = 0; i < Number(body.count); i++) {
      const call = client.watchPresence({ userIds: [], includeSnapshot: false, resumeAfter: '' });
      const stream = { call, events: 0, ended: undefined as string | undefined };
      call.on('data', (response: WatchPresenceResponse) => {
        stream.events++;
        const at = response.event?.at;
        if (at !== undefined) lags.push(Date.now() - at.getTime());
      });
      call.on('error', (err: Error) => (stream.ended = err.message));
      call.on('end', () => (stream.ended ??= 'ended'));
      streams.push(stream);
    }
    return {};
  },
  reset() {
    lags = [];
    for (const s of streams) s.events = 0;
    return {};
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
  close() {
    for (const s of streams) s.call.cancel();
    streams = [];
    client?.close();
    return {};
  },
});
process.send!({ op: 'ready' });
