import { startServer } from '../../bench/lib/fixtures.js';
import { Fleet, type Target } from '../lib/fleet.js';
import { internals, MiB, percentile, round, within } from '../lib/internals.js';
import { checkConvergence } from '../lib/ledger.js';
import { listedSessions } from '../lib/registry-view.js';
import { Checks, type Scenario } from '../lib/scenario.js';

const CLIENT_TYPES = ['app', 'pc', 'web', 'app', 'web'];

/**
 * Sessions arriving at a steady rate, held, then all closed: no handshake fails, the registry
 * lists exactly the sessions the clients hold, and once they are gone the node holds nothing of
 * them (sessions, sockets, timers, heap back near where it started).
 */
export const connectRamp: Scenario = {
  name: 'connect-ramp',
  summary: '1,000 users × 5 sessions connecting at 200/s (quick: 200 × 5), held, then closed',
  async run({ quick, log }) {
    const users = quick ? 200 : 1000;
    const ratePerSec = 200;
    const holdMs = quick ? 2000 : 10_000;
    const checks = new Checks();
    const server = await startServer('pushgate', 'pushgate', {});
    const fleet = await Fleet.start(4);
    try {
      const baseline = await internals(server, { gc: true, resetDelay: true });
      const userIds = Array.from({ length: users }, (_, i) => `ramp-${i}`);
      const targets: Target[] = userIds.flatMap((userId) =>
        CLIENT_TYPES.map((clientType) => ({ userId, clientType, url: server.httpUrl })),
      );
      log(`connecting ${targets.length} sessions at ${ratePerSec}/s`);
      const ramp = await fleet.connect(targets, { ratePerSec });
      const duringRamp = await internals(server, { resetDelay: true });
      checks.expect(ramp.failed === 0, `every handshake succeeds; ${ramp.failed} failed (first: ${ramp.firstError})`);

      await new Promise((r) => setTimeout(r, holdMs));
      const truth = await fleet.truth();
      const listed = await listedSessions(server.client, userIds);
      const registry = checkConvergence(new Set(truth.keys()), listed);
      checks.expect(truth.size === targets.length, `the clients hold ${targets.length} sessions; they hold ${truth.size}`);
      checks.expect(
        registry.converged,
        `ListSessions lists exactly the clients' sessions; extra ${registry.extra.length}, missing ${registry.missing.length}`,
      );
      const held = await internals(server, { gc: true });
      checks.expect(held.localSessions === targets.length, `the node holds ${targets.length} sessions; it holds ${held.localSessions}`);

      log('closing every session');
      await fleet.close();
      const drained = await within(10_000, async () => {
        const now = await internals(server);
        return now.localSessions === 0 && now.sockets === 0 && now.pendingWaits === 0;
      });
      checks.expect(drained.ok, 'the node holds no session, socket or pending ack within 10 s of the close');
      const gone = await listedSessions(server.client, userIds);
      checks.expect(gone.size === 0, `ListSessions lists nothing after the close; it lists ${gone.size}`);
      const after = await internals(server, { gc: true });
      checks.expect(after.timers <= baseline.timers, `timers back to ${baseline.timers}; ${after.timers}`);
      // The heap may keep what a node grows for good (V8's own tables, Socket.IO's maps at their
      // high-water size), but not the sessions: at most a tenth of what they took, or 8 MiB.
      const growth = held.heapUsed - baseline.heapUsed;
      const kept = after.heapUsed - baseline.heapUsed;
      checks.expect(
        kept <= Math.max(8 * MiB, growth / 10),
        `heap back near its baseline after the close: ${round(kept / MiB, 1)} MiB kept of ${round(growth / MiB, 1)} MiB grown`,
      );
      return {
        failures: checks.failures,
        figures: {
          sessions: targets.length,
          'ramp seconds': round(ramp.ms / 1000),
          'failed handshakes': ramp.failed,
          'handshake p50 ms': round(percentile(ramp.handshakeMs, 50), 1),
          'handshake p99 ms': round(percentile(ramp.handshakeMs, 99), 1),
          'event-loop delay p99 during the ramp ms': round(duringRamp.loopDelay.p99Ms),
          'heap per session KB': round((held.heapUsed - baseline.heapUsed) / targets.length / 1024, 2),
          'RSS per session KB': round((held.rss - baseline.rss) / targets.length / 1024, 2),
          'registry equal to the clients': registry.converged ? 'yes' : 'no',
          'ms until empty after the close': Math.round(drained.ms),
          'heap kept after the close MiB': round(kept / MiB, 1),
        },
      };
    } finally {
      await fleet.stop();
      await server.stop();
    }
  },
};
