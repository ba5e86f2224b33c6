import { pushToUsers } from '../../test/support/push-to-users.js';
import { type BenchServer, startDevices, startServer } from '../lib/fixtures.js';
import { cpuMs, median, type ScenarioResult } from '../lib/measure.js';

/**
 * batch — PushToUsers to U users × 3 sessions (memory registry) against the floor: the bare
 * Socket.IO server emitting with an ack to the same number of sockets and waiting for every ack.
 * Server CPU per acked delivery from /proc of the server process; rounds alternate.
 */
export async function batch(quick: boolean): Promise<ScenarioResult> {
  const users = quick ? 100 : 1000;
  const perRound = quick ? 3 : 10;
  const rounds = quick ? 2 : 4;
  const userIds = Array.from({ length: users }, (_, i) => `batch-${i}`);
  const sessions = userIds.flatMap((u) => [u, u, u]);
  const pushgate = await startServer('pushgate', 'pushgate');
  const floor = await startServer('floor', 'floor');
  const devices = await startDevices(2);
  try {
    for (const server of [pushgate, floor]) await devices.connect(server.httpUrl, sessions);
    const once = async (server: BenchServer): Promise<number> => {
      if (server === floor)
        return (await floor.child.request<{ acked: number }>('emitAll', { event: 'notice', data: { title: 'incident', id: 42 } })).acked;
      const call = pushToUsers(pushgate.client, { userIds, event: 'notice', data: { title: 'incident', id: 42 }, ackTimeoutMs: 10_000 });
      const { summary } = await call.done;
      return summary?.acked ?? 0;
    };
    const cpu = new Map<BenchServer, number[]>([
      [pushgate, []],
      [floor, []],
    ]);
    const ms = new Map<BenchServer, number[]>([
      [pushgate, []],
      [floor, []],
    ]);
    for (const server of [pushgate, floor]) for (let i = 0; i < 2; i++) await once(server); // warm-up
    for (let round = 0; round < rounds; round++) {
      for (const server of round % 2 === 0 ? [pushgate, floor] : [floor, pushgate]) {
        const before = cpuMs(server.pid);
        for (let i = 0; i < perRound; i++) {
          const started = performance.now();
          const acked = await once(server);
          ms.get(server)!.push(performance.now() - started);
          if (acked !== sessions.length) throw new Error(`${server.name}: ${acked} of ${sessions.length} deliveries acked`);
        }
        cpu.get(server)!.push(((cpuMs(server.pid) - before) * 1000) / (perRound * sessions.length));
      }
    }
    const row = (server: BenchServer) => ({
      target: server.name,
      'CPU µs/delivery': median(cpu.get(server)!),
      'batch ms p50': median(ms.get(server)!),
      'deliveries/s': (sessions.length * 1000) / median(ms.get(server)!),
    });
    const [ours, base] = [row(pushgate), row(floor)];
    const ratio = ours['CPU µs/delivery'] / base['CPU µs/delivery'];
    return {
      scenario: 'batch',
      title: `batch: PushToUsers to ${users} users × 3 sessions vs raw Socket.IO emit+ack (${rounds} rounds × ${perRound} batches)`,
      rows: [ours, base, { target: 'ratio', 'CPU µs/delivery': ratio, 'batch ms p50': ours['batch ms p50'] / base['batch ms p50'] }],
      inputs: { 'server CPU µs per delivery (batch)': ours['CPU µs/delivery'], 'floor CPU µs per delivery': base['CPU µs/delivery'] },
      notes: [`target: CPU per acked delivery ≤ 1.3× the floor — ${ratio <= 1.3 ? 'met' : 'MISSED'} (${ratio.toFixed(2)}×)`],
    };
  } finally {
    await devices.stop();
    await pushgate.stop();
    await floor.stop();
  }
}
