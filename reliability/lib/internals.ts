import type { BenchServer } from '../../bench/lib/fixtures.js';

export { percentile } from '../../bench/lib/measure.js';

/** What bench/lib/server.ts's `internals` op reports of a node (see there). */
export interface Internals {
  readonly localSessions: number;
  readonly pendingWaits: number;
  readonly presenceSubscribers: number;
  readonly callsInFlight: number;
  readonly sockets: number;
  readonly timers: number;
  readonly handles: number;
  readonly heapUsed: number;
  readonly rss: number;
  readonly loopDelay: { readonly p99Ms: number; readonly maxMs: number };
}

/** The node's internals, after a full GC when `gc` (heap figures then mean what is held). */
export function internals(server: BenchServer, options: { gc?: boolean; resetDelay?: boolean } = {}): Promise<Internals> {
  return server.child.request<Internals>('internals', options);
}

/** Polls `check` every 100 ms until it holds or `timeoutMs` passes; resolves with whether it held and how long it took. */
export async function within(timeoutMs: number, check: () => Promise<boolean> | boolean): Promise<{ ok: boolean; ms: number }> {
  const started = performance.now();
  for (;;) {
    if (await check()) return { ok: true, ms: performance.now() - started };
    if (performance.now() - started > timeoutMs) return { ok: false, ms: performance.now() - started };
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const round = (value: number, digits = 1): number => Math.round(value * 10 ** digits) / 10 ** digits;
