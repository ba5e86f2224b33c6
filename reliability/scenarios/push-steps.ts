import { startServer } from '../../bench/lib/fixtures.js';
import { Caller } from '../lib/caller.js';
import { Fleet, type Target } from '../lib/fleet.js';
import { internals, percentile, round } from '../lib/internals.js';
import { type CallRecord, checkLedger } from '../lib/ledger.js';
import { Checks, type Scenario } from '../lib/scenario.js';

/** The p99 a step must stay under, with a clean ledger, to count as held. */
const P99_BOUND_MS = 250;
const CLIENT_TYPES = ['app', 'pc', 'web', 'app', 'web'];
const WARM_UP_MS = 3000;

/**
 * PushToUser at rising steady rates against a connected population: each step's p99 and ledger,
 * and the highest step held (p99 under 250 ms, ledger clean). A step over the bound is a figure,
 * not a failure (it says where this machine's ceiling is); a ledger violation at any step fails.
 */
export const pushSteps: Scenario = {
  name: 'push-steps',
  summary: 'PushToUser at 500 / 1,000 / 2,000 / 4,000 per second to 1,000 users × 5 sessions (quick: 250 / 500 to 200 × 5)',
  async run({ quick, log }) {
    const users = quick ? 200 : 1000;
    const steps = quick ? [250, 500] : [500, 1000, 2000, 4000];
    const stepMs = quick ? 4000 : 20_000;
    const checks = new Checks();
    const server = await startServer('pushgate', 'pushgate', {});
    const fleet = await Fleet.start(4);
    const caller = await Caller.start(2);
    try {
      const userIds = Array.from({ length: users }, (_, i) => `step-${i}`);
      const targets: Target[] = userIds.flatMap((userId) =>
        CLIENT_TYPES.map((clientType) => ({ userId, clientType, url: server.httpUrl })),
      );
      const connected = await fleet.connect(targets, { concurrency: 200 });
      checks.expect(connected.failed === 0, `every session connects; ${connected.failed} failed (${connected.firstError})`);

      // A warm-up at the first step's rate, outside every step's figures (its calls are in the
      // ledger): the first second of a fresh node and a fresh channel is JIT and connection setup.
      await caller.push({
        addresses: [server.grpcAddress],
        users: userIds,
        ratePerSec: steps[0]!,
        durationMs: WARM_UP_MS,
        ackTimeoutMs: 5000,
      });
      await caller.drain(true);
      const figures: Record<string, number | string> = { sessions: targets.length };
      let highest = 0;
      for (const rate of steps) {
        log(`${rate} pushes/s for ${stepMs / 1000} s`);
        await internals(server, { resetDelay: true });
        const from = caller.calls.length;
        await caller.push({ addresses: [server.grpcAddress], users: userIds, ratePerSec: rate, durationMs: stepMs, ackTimeoutMs: 5000 });
        const loop = await internals(server);
        await caller.drain(true);
        await fleet.drain();
        const calls: CallRecord[] = caller.calls.slice(from);
        const ledger = checkLedger({ calls, receipts: fleet.receipts, sessions: fleet.spans });
        const latencies = calls.filter((c) => c.code === 0).map((c) => c.endedMs! - c.startedMs);
        const p99 = percentile(latencies, 99);
        const clean = ledger.violations.length === 0 && ledger.okCalls === calls.length;
        figures[`${rate}/s p50 ms`] = round(percentile(latencies, 50));
        figures[`${rate}/s p99 ms`] = round(p99);
        figures[`${rate}/s calls not OK`] = calls.length - ledger.okCalls;
        figures[`${rate}/s event-loop delay p99 ms`] = round(loop.loopDelay.p99Ms);
        checks.expect(ledger.okCalls === calls.length, `every call at ${rate}/s ends OK; ${JSON.stringify(ledger.failedCalls)} did not`);
        // Steps rise: the first one not held ends the climb.
        if (!clean || p99 >= P99_BOUND_MS) break;
        highest = rate;
      }
      const all = checkLedger({ calls: caller.calls, receipts: fleet.receipts, sessions: fleet.spans });
      figures['highest step held (p99 < 250 ms, ledger clean) /s'] = highest;
      const after = await internals(server);
      checks.expect(
        after.pendingWaits === 0 && after.callsInFlight === 0,
        `no pending ack or call left; ${after.pendingWaits} / ${after.callsInFlight}`,
      );
      return { figures, ledger: all, failures: checks.failures };
    } finally {
      await caller.stop();
      await fleet.stop();
      await server.stop();
    }
  },
};
