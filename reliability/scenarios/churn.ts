import { startServer } from '../../bench/lib/fixtures.js';
import { Caller } from '../lib/caller.js';
import { Fleet, type Target } from '../lib/fleet.js';
import { internals, MiB, round, within } from '../lib/internals.js';
import { checkConvergence, checkLedger } from '../lib/ledger.js';
import { listedSessions, PresenceTap } from '../lib/registry-view.js';
import { Checks, type Scenario } from '../lib/scenario.js';

/**
 * Heap growth per minute over the last 40% of the run that counts as a leak (full run only): a
 * flat heap of 100–200 MB still shows a least-squares slope of a few hundred KB/min from GC timing.
 */
const SLOPE_BOUND_KB_PER_MIN = 1024;
/** Seconds of connects per churn round. */
const BATCH_S = 4;

/**
 * Sessions coming and going at a steady rate while pushes go to them and to users who stay: at
 * the end nothing is left behind (pending acks, calls, sockets, timers, registry entries, presence
 * streams), the registry and a presence stream agree with the clients, and the heap is flat.
 */
export const churn: Scenario = {
  name: 'churn',
  summary: '100 connects + 100 disconnects per second for 10 minutes while pushing 500/s (quick: 50/s for 20 s, 200 pushes/s)',
  async run({ quick, log }) {
    const churnPerSec = quick ? 50 : 100;
    const durationMs = quick ? 20_000 : 600_000;
    const pushesPerSec = quick ? 200 : 500;
    const sampleEveryMs = quick ? 2000 : 15_000;
    const checks = new Checks();
    const server = await startServer('pushgate', 'pushgate', {});
    const steady = await Fleet.start(1);
    const churning = await Fleet.start(2);
    const caller = await Caller.start(1);
    const tap = new PresenceTap(() => server.client);
    try {
      await tap.snapshot();
      const baseline = await internals(server, { gc: true });
      const stayers = Array.from({ length: 100 }, (_, i) => `stay-${i}`);
      const comers = Array.from({ length: 100 }, (_, i) => `churn-${i}`);
      const url = server.httpUrl;
      await steady.connect(stayers.flatMap((userId) => ['app', 'web'].map((clientType) => ({ userId, clientType, url }))));

      // In rounds of BATCH_S seconds: connect a round's sessions, paced over it, while the round
      // before's are closed; each session lives about two rounds. (A fleet process takes one connect
      // request at a time, so rounds rather than a timer per second.)
      let running = true;
      const perRound = churnPerSec * BATCH_S;
      const churnStarted = performance.now();
      const churnLoop = (async () => {
        for (let round = 0; running; round++) {
          const batch: Target[] = Array.from({ length: perRound }, (_, i) => ({
            userId: comers[(round * perRound + i) % comers.length]!,
            clientType: i % 2 === 0 ? 'app' : 'pc',
            url,
          }));
          const closing = round === 0 ? Promise.resolve() : churning.close(perRound / churning.procs.length);
          await Promise.all([churning.connect(batch, { ratePerSec: churnPerSec }), closing]);
        }
      })();
      const heap: [number, number][] = [];
      const started = performance.now();
      const sampler = setInterval(() => {
        void internals(server, { gc: true }).then((now) => heap.push([(performance.now() - started) / 60_000, now.heapUsed]));
      }, sampleEveryMs);
      log(`churning ${churnPerSec}/s and pushing ${pushesPerSec}/s for ${durationMs / 1000} s`);
      await caller.push({
        addresses: [server.grpcAddress],
        users: stayers.flatMap((s, i) => [s, comers[i]!]),
        ratePerSec: pushesPerSec,
        durationMs,
        ackTimeoutMs: 3000,
      });
      clearInterval(sampler);
      running = false;
      const churnSeconds = (performance.now() - churnStarted) / 1000;
      const pushEndedMs = Date.now();
      await churnLoop;
      const loop = await internals(server);

      await churning.close();
      const truth = await steady.truth();
      const settled = await within(10_000, async () => {
        const listed = await listedSessions(server.client, [...stayers, ...comers]);
        return checkConvergence(new Set(truth.keys()), listed, [tap]).converged;
      });
      const convergence = checkConvergence(new Set(truth.keys()), await listedSessions(server.client, [...stayers, ...comers]), [tap]);
      checks.expect(
        settled.ok,
        `the registry and the presence stream equal the clients' sessions within 10 s; registry extra ${convergence.extra.length} / missing ${convergence.missing.length}`,
      );
      const end = await internals(server, { gc: true });
      checks.expect(end.pendingWaits === 0, `no pending ack left; ${end.pendingWaits}`);
      checks.expect(end.callsInFlight === 0, `no call left in flight; ${end.callsInFlight}`);
      checks.expect(end.localSessions === truth.size, `only the steady sessions are left (${truth.size}); ${end.localSessions}`);
      checks.expect(end.presenceSubscribers === 1, `one presence stream (the tap); ${end.presenceSubscribers}`);
      // Socket.IO keeps one ping timer per open socket: the steady sessions' and nothing more.
      checks.expect(
        end.timers <= baseline.timers + truth.size,
        `timers: at most ${baseline.timers} + one per steady session; ${end.timers}`,
      );

      await caller.drain(true);
      await Promise.all([steady.drain(), churning.drain()]);
      const ledger = checkLedger({
        calls: caller.calls,
        receipts: [...steady.receipts, ...churning.receipts],
        sessions: [...steady.spans, ...churning.spans],
      });
      // The last 40%: with the default windows the node's bounded stores (idempotency 300 s,
      // receipts capped at 100,000, the presence ring at 10,000 events) are full by then.
      const slope = slopeKbPerMin(heap.slice(Math.floor(heap.length * 0.6)));
      if (!quick) checks.expect(slope < SLOPE_BOUND_KB_PER_MIN, `heap flat over the last 40% of the run: ${round(slope)} KB/min`);
      return {
        ledger,
        failures: checks.failures,
        figures: {
          'sessions connected and closed': churning.spans.length,
          'connects per second while pushing': round(churning.spans.filter((s) => s.connectedMs <= pushEndedMs).length / churnSeconds),
          pushes: caller.calls.length,
          'event-loop delay p99 ms': round(loop.loopDelay.p99Ms),
          'heap slope over the last 40% KB/min': round(slope),
          'heap after vs before MiB': round((end.heapUsed - baseline.heapUsed) / MiB, 1),
          'heap at 25 / 50 / 75 / 100% of the run MiB': [0.25, 0.5, 0.75, 1]
            .map((f) => round((heap[Math.min(heap.length - 1, Math.ceil(f * heap.length) - 1)]?.[1] ?? 0) / MiB))
            .join(' / '),
          'ms to converge after the churn': Math.round(settled.ms),
          'presence stream reopened': tap.reopened,
        },
        notes: [
          'Every push carries a message id, so the node keeps idempotency results (up to 100,000, 300 s) and receipts (up to 100,000) as configured by default: the heap grows until those fill, which is why the slope is taken over the last 40% of the run.',
          ...(quick ? ['The heap slope is reported, not checked, in the quick run: 20 s is too short for a trend.'] : []),
        ],
      };
    } finally {
      tap.close();
      await caller.stop();
      await Promise.all([steady.stop(), churning.stop()]);
      await server.stop();
    }
  },
};

/** Least-squares slope of (minute, bytes) samples, in KB per minute. */
function slopeKbPerMin(samples: readonly [number, number][]): number {
  const n = samples.length;
  if (n < 2) return 0;
  const mx = samples.reduce((s, [x]) => s + x, 0) / n;
  const my = samples.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of samples) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den / 1024;
}
