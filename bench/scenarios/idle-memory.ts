import { type BenchServer, sleep, startDevices, startServer } from '../lib/fixtures.js';
import { type Row, rssKb, type ScenarioResult } from '../lib/measure.js';

/** Sessions one device process holds at most (its open-file limit is 20,000). */
const PER_DEVICE = 4000;

/**
 * idle memory — KB of server RSS per idle session at several counts, pushgate (memory registry)
 * against bare Socket.IO with the same JWT check, each count on a fresh server process: RSS after
 * a full GC with no session, then with N idle sessions (2 per user) from device processes bound
 * to 127.0.0.2…9. The curve lets a model extrapolate; the difference is per-session state.
 */
export async function idleMemory(quick: boolean): Promise<ScenarioResult> {
  const counts = quick ? [200, 600] : [1000, 5000, 15000];
  const rows: Row[] = [];
  const perSession = new Map<string, Map<number, number>>([
    ['pushgate', new Map()],
    ['floor', new Map()],
  ]);
  for (const [i, count] of counts.entries()) {
    const users = Array.from({ length: count }, (_, j) => `idle-${j >> 1}`);
    for (const kind of i % 2 === 0 ? (['pushgate', 'floor'] as const) : (['floor', 'pushgate'] as const)) {
      const server = await startServer(kind, kind);
      const devices = await startDevices(Math.ceil(count / PER_DEVICE));
      try {
        const before = await settledRss(server, quick);
        await devices.connect(server.httpUrl, users);
        const after = await settledRss(server, quick);
        perSession.get(kind)!.set(count, (after - before) / count);
        rows.push({
          sessions: count,
          target: kind,
          'RSS empty MB': before / 1024,
          'RSS loaded MB': after / 1024,
          'KB/session': (after - before) / count,
        });
      } finally {
        await devices.stop();
        await server.stop();
      }
    }
    const ratio = perSession.get('pushgate')!.get(count)! / perSession.get('floor')!.get(count)!;
    rows.push({ sessions: count, target: 'ratio', 'KB/session': ratio });
  }
  const top = counts[counts.length - 1]!;
  const ratio = perSession.get('pushgate')!.get(top)! / perSession.get('floor')!.get(top)!;
  return {
    scenario: 'memory',
    title: `idle memory: KB of server RSS per idle session at ${counts.join(' / ')} sessions, pushgate (memory registry) vs bare Socket.IO + JWT`,
    rows,
    inputs: {
      [`KB per idle session at ${top}`]: perSession.get('pushgate')!.get(top)!,
      [`floor KB per idle session at ${top}`]: perSession.get('floor')!.get(top)!,
    },
    notes: [
      `target: ≤ 1.05× bare Socket.IO at ${top} sessions — ${ratio <= 1.05 ? 'met' : 'MISSED'} (${ratio.toFixed(2)}×)`,
      'RSS read from /proc after two full GCs (--expose-gc) and 1 s of rest; includes engine.io/ws buffers, not only the JS heap',
    ],
  };
}

async function settledRss(server: BenchServer, quick: boolean): Promise<number> {
  await server.child.request('gc');
  await sleep(quick ? 300 : 1000);
  await server.child.request('gc');
  await sleep(200);
  return rssKb(server.pid);
}
