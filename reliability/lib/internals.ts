import type { BenchServer } from '../../bench/lib/fixtures.js';

// What scenarios read from a single node (bench/lib/server.ts `internals`), and the small waits
// and statistics they share.

export { percentile } from '../../bench/lib/measure.js';

export const MiB = 2 ** 20;

/** What bench/lib/server.ts's `internals` op reports of a node: what must go back to zero, its memory and event-loop delay. */
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

/**
 * The node's internals; after a full GC with `gc` (heap figures then mean what is held), and with
 * `resetDelay` the event-loop delay figures start again after this answer.
 */
export function internals(server: BenchServer, options: { gc?: boolean; resetDelay?: boolean } = {}): Promise<Internals> {
  return server.child.request<Internals>('internals', options);
}

/**
 * Polls the node until `check` holds, or `timeoutMs` passed; answers how long it took (or
 * undefined) and what was seen last, so a failure can say what the node still held.
 */
export async function waitForNode(
  server: BenchServer,
  check: (now: Internals) => boolean,
  timeoutMs: number,
  everyMs = 25,
): Promise<{ ms: number | undefined; last: Internals }> {
  const started = performance.now();
  for (;;) {
    const last = await internals(server);
    const ms = performance.now() - started;
    if (check(last)) return { ms, last };
    if (ms > timeoutMs) return { ms: undefined, last };
    await sleep(everyMs);
  }
}

/** Polls `check` every `everyMs` until it holds or `timeoutMs` passes; resolves with whether it held and how long it took. */
export async function within(
  timeoutMs: number,
  check: () => Promise<boolean> | boolean,
  everyMs = 100,
): Promise<{ ok: boolean; ms: number }> {
  const started = performance.now();
  for (;;) {
    if (await check()) return { ok: true, ms: performance.now() - started };
    if (performance.now() - started > timeoutMs) return { ok: false, ms: performance.now() - started };
    await sleep(everyMs);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const round = (value: number, digits = 0): number => Math.round(value * 10 ** digits) / 10 ** digits;
