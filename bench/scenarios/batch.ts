import { pushToUsers } from '../../test/support/push-to-users.js';
import { type BenchServer, startDevices, startServer } from '../lib/fixtures.js';
import { cpuMs, median, type ScenarioResult } from '../lib/measure.js';

/**
 * batch — PushToUsers to U users × 3 sessions (memory registry) against the floor: the bare
 * Socket.IO server emitting with an ack to the same number of sockets and waiting for every ack.
 * Server CPU per acked delivery from /proc of the server process; rounds alternate. pushgate runs
 * each batch twice: one user's result per message (the default) and max_results_per_message 100.
 */
/** Results per message of the packed variant (max_results_per_message). */
const PACKED = 100;

interface Variant {
  readonly name: string;
  readonly server: BenchServer;
  /** Runs one batch; resolves with the deliveries acked. */
  readonly once: () => Promise<number>;
}

type Row = {
  readonly target: string;
  readonly 'CPU µs/delivery': number;
  readonly 'batch ms p50': number;
  readonly 'deliveries/s': number;
};

async function batchOf(server: BenchServer, userIds: readonly string[], maxResultsPerMessage: number): Promise<number> {
  const call = pushToUsers(server.client, {
    userIds: [...userIds],
    event: 'notice',
    data: { title: 'incident', id: 42 },
    ackTimeoutMs: 10_000,
    maxResultsPerMessage,
  });
  const { summary } = await call.done;
  return summary?.acked ?? 0;
}

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
    const data = { title: 'incident', id: 42 };
    // Each variant: what one batch is, and the server whose CPU it costs.
    const variants: Variant[] = [
      { name: 'pushgate', server: pushgate, once: () => batchOf(pushgate, userIds, 0) },
      { name: `pushgate, max_results_per_message ${PACKED}`, server: pushgate, once: () => batchOf(pushgate, userIds, PACKED) },
      {
        name: 'floor',
        server: floor,
        once: async () => (await floor.child.request<{ acked: number }>('emitAll', { event: 'notice', data })).acked,
      },
    ];
    const cpu = new Map<Variant, number[]>(variants.map((v) => [v, []]));
    const ms = new Map<Variant, number[]>(variants.map((v) => [v, []]));
    for (const variant of variants) for (let i = 0; i < 2; i++) await variant.once(); // warm-up
    for (let round = 0; round < rounds; round++) {
      // Each variant first, middle and last in turn.
      const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
      for (const variant of order) {
        const before = cpuMs(variant.server.pid);
        for (let i = 0; i < perRound; i++) {
          const started = performance.now();
          const acked = await variant.once();
          ms.get(variant)!.push(performance.now() - started);
          if (acked !== sessions.length) throw new Error(`${variant.name}: ${acked} of ${sessions.length} deliveries acked`);
        }
        cpu.get(variant)!.push(((cpuMs(variant.server.pid) - before) * 1000) / (perRound * sessions.length));
      }
    }
    const row = (variant: Variant) => ({
      target: variant.name,
      'CPU µs/delivery': median(cpu.get(variant)!),
      'batch ms p50': median(ms.get(variant)!),
      'deliveries/s': (sessions.length * 1000) / median(ms.get(variant)!),
    });
    const [ours, packed, base] = variants.map(row) as [Row, Row, Row];
    const ratioOf = (r: Row): number => r['CPU µs/delivery'] / base['CPU µs/delivery'];
    const verdict = (r: Row): string => `${r.target}: ${ratioOf(r) <= 1.3 ? 'met' : 'MISSED'} (${ratioOf(r).toFixed(2)}×)`;
    return {
      scenario: 'batch',
      title: `batch: PushToUsers to ${users} users × 3 sessions vs raw Socket.IO emit+ack (${rounds} rounds × ${perRound} batches)`,
      rows: [
        ours,
        packed,
        base,
        { target: 'ratio', 'CPU µs/delivery': ratioOf(ours), 'batch ms p50': ours['batch ms p50'] / base['batch ms p50'] },
        {
          target: `ratio, max_results_per_message ${PACKED}`,
          'CPU µs/delivery': ratioOf(packed),
          'batch ms p50': packed['batch ms p50'] / base['batch ms p50'],
        },
      ],
      inputs: {
        'server CPU µs per delivery (batch)': ours['CPU µs/delivery'],
        [`server CPU µs per delivery (batch, max_results_per_message ${PACKED})`]: packed['CPU µs/delivery'],
        'floor CPU µs per delivery': base['CPU µs/delivery'],
      },
      notes: [`target: CPU per acked delivery ≤ 1.3× the floor — ${verdict(ours)}; ${verdict(packed)}`],
    };
  } finally {
    await devices.stop();
    await pushgate.stop();
    await floor.stop();
  }
}
