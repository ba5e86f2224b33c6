import { type Child, spawnChild } from '../lib/children.js';
import { startDevices, startServer, until } from '../lib/fixtures.js';
import { cpuMs, type Row, type ScenarioResult } from '../lib/measure.js';

export interface PresenceLag {
  /** The streams' max_events_per_message (0: one event per message). */
  readonly perMessage: number;
  readonly events: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly minPerStream: number;
  readonly maxPerStream: number;
  readonly cutOff: number;
  readonly connects: number;
  /** CPU of the watcher process over the churn, as a share of one core: near 1 means the watcher, not the node, set the lag. */
  readonly watcherCpu: number;
  /** The same for the node, when its pid is known. */
  readonly serverCpu: number;
  /** Node CPU (µs) per event delivered to a stream, connects and disconnects included. */
  readonly serverUsPerEvent: number;
}

/**
 * Opens `watchers` WatchPresence streams to `grpcAddress` (from a watcher process), churns
 * sessions on `httpUrl` at `rate` connects (and as many disconnects) per second for `seconds`
 * from a device process, and returns the lag from each event's `at` to its arrival.
 * `subscribed()` says when the node has all streams subscribed (undefined: wait a second).
 */
export async function measurePresenceLag(
  grpcAddress: string,
  httpUrl: string,
  options: {
    watchers: number;
    rate: number;
    seconds: number;
    subscribed?: () => Promise<boolean>;
    serverPid?: number;
    /** Server process to CPU-profile over the churn into `profileDir` (BENCH_PRESENCE_CPU_PROF), with the watcher. */
    server?: Child;
    /** The streams' max_events_per_message (0: one event per message). */
    perMessage?: number;
  },
): Promise<PresenceLag> {
  const profileDir = process.env.BENCH_PRESENCE_CPU_PROF;
  const watcher = spawnChild(new URL('../lib/watcher.ts', import.meta.url), []);
  const devices = await startDevices(1);
  try {
    await watcher.ready;
    await watcher.request('watch', { grpcAddress, count: options.watchers, perMessage: options.perMessage ?? 0 });
    if (options.subscribed) await until('every presence stream subscribed', options.subscribed);
    else await new Promise((r) => setTimeout(r, 1000));
    const profiled = profileDir === undefined ? [] : [watcher, ...(options.server ? [options.server] : [])];
    for (const child of profiled) await child.request('profileStart');
    const [cpu0, t0] = [cpuMs(watcher.pid), performance.now()];
    const server0 = options.serverPid === undefined ? 0 : cpuMs(options.serverPid);
    const churn = await devices.procs[0]!.request<{ connects: number; failed: number }>(
      'churn',
      { url: httpUrl, rate: options.rate, durationMs: options.seconds * 1000, holdMs: 250 },
      options.seconds * 1000 + 60_000,
    );
    if (churn.failed > 0) throw new Error(`${churn.failed} churn sessions failed to connect`);
    // Each session: ONLINE + CONNECTED, then DISCONNECTED + OFFLINE, to every stream.
    const expected = churn.connects * 4;
    await until(`${expected} presence events on every stream`, async () => {
      const progress = await watcher.request<{ minPerStream: number; cutOff: number }>('progress');
      return progress.minPerStream >= expected || progress.cutOff > 0;
    });
    const watcherCpu = (cpuMs(watcher.pid) - cpu0) / (performance.now() - t0);
    const serverMs = options.serverPid === undefined ? Number.NaN : cpuMs(options.serverPid) - server0;
    const serverCpu = serverMs / (performance.now() - t0);
    for (const [i, child] of profiled.entries()) {
      await child.request('profileStop', {
        path: `${profileDir}/${i === 0 ? 'watcher' : 'server'}-${options.watchers}x${options.rate}x${options.perMessage ?? 0}.cpuprofile`,
      });
    }
    const stats = await watcher.request<Omit<PresenceLag, 'connects'>>('stats');
    if (process.env.BENCH_PRESENCE_TIMELINE)
      console.log('worst lag per second (ms):', (await watcher.request<{ worst: number[] }>('timeline')).worst.join(' '));
    await watcher.request('close');
    return {
      ...stats,
      perMessage: options.perMessage ?? 0,
      connects: churn.connects,
      watcherCpu,
      serverCpu,
      serverUsPerEvent: (serverMs * 1000) / stats.events,
    };
  } finally {
    await devices.stop();
    await watcher.kill();
  }
}

/** Events per message the batched rows ask for (max_events_per_message). */
export const BATCHED = 100;

/**
 * presence — 100 WatchPresence subscribers on one node (memory registry) while 200 sessions/s
 * connect and disconnect: once with one event per message (the default), once with streams that
 * set max_events_per_message, each on a fresh node.
 */
export async function presenceLag(quick: boolean): Promise<ScenarioResult> {
  const [watchers, rate, seconds] = [
    Number(process.env.BENCH_PRESENCE_WATCHERS ?? (quick ? 20 : 100)),
    Number(process.env.BENCH_PRESENCE_RATE ?? (quick ? 100 : 200)),
    quick ? 3 : 20,
  ];
  const lags: PresenceLag[] = [];
  for (const perMessage of [0, BATCHED]) {
    const server = await startServer('pushgate', 'pushgate');
    try {
      lags.push(
        await measurePresenceLag(server.grpcAddress, server.httpUrl, {
          watchers,
          rate,
          seconds,
          subscribed: async () => (await server.child.request<{ count: number }>('subscribers')).count >= watchers,
          serverPid: server.pid,
          server: server.child,
          perMessage,
        }),
      );
    } finally {
      await server.stop();
    }
  }
  return presenceResult(
    'presence',
    `presence lag: ${watchers} WatchPresence subscribers, ${rate} sessions/s connecting and disconnecting for ${seconds} s, one node`,
    lags,
    20,
  );
}

export function presenceResult(scenario: string, title: string, lags: readonly PresenceLag[], targetMs: number): ScenarioResult {
  const rows: Row[] = lags.map((lag) => ({
    'events per message': lag.perMessage <= 1 ? '1' : `≤ ${lag.perMessage}`,
    'sessions churned': lag.connects,
    'events delivered': lag.events,
    'lag p50 ms': lag.p50,
    'lag p99 ms': lag.p99,
    'lag max ms': lag.max,
    'events/stream min–max': `${lag.minPerStream}–${lag.maxPerStream}`,
    'cut off': lag.cutOff,
    'watcher CPU': `${(lag.watcherCpu * 100).toFixed(0)}%`,
    ...(Number.isFinite(lag.serverCpu) && {
      'node CPU': `${(lag.serverCpu * 100).toFixed(0)}%`,
      'node CPU µs/event': Number(lag.serverUsPerEvent.toFixed(1)),
    }),
  }));
  const verdict = (lag: PresenceLag): string =>
    `${lag.perMessage <= 1 ? 'one event per message' : `max_events_per_message ${lag.perMessage}`}: ${lag.p99 <= targetMs && lag.cutOff === 0 ? 'met' : 'MISSED'} (p99 ${lag.p99} ms, ${lag.cutOff} cut off)`;
  return {
    scenario,
    title,
    rows,
    inputs: {},
    notes: [
      `target: p99 ≤ ${targetMs} ms with no subscriber cut off — ${lags.map(verdict).join('; ')}`,
      'lag = arrival time in the watcher process − the event’s `at` (ms resolution, same machine clock); all streams are decoded by one watcher process, whose CPU share is shown: near 100% it, not the node, sets the lag',
    ],
  };
}
