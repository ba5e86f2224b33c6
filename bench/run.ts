/**
 * npm run bench [-- --quick] [scenario ...] — pushgate against minimal compositions of the same
 * libraries doing the same work (the floors), measured in the same run with the same load
 * generator, interleaved, so the ratios mean something on a noisy machine. Servers and load
 * generators (raw-ws device processes) are separate processes; CPU and memory are read from /proc
 * of the server process, Redis figures from INFO deltas of a private redis-server.
 *
 * Scenarios (all by default, in this order): push, redis, batch, connect, memory, presence,
 * cluster, guarantees. `--quick` runs each at small sizes (a smoke test: under two minutes). Each writes
 * bench/results/<date>-<scenario>[-quick].{json,md}; the capacity-model inputs are printed last.
 * See bench/README.md.
 */
import { cpus, loadavg } from 'node:os';
import { cleanUp } from './lib/children.js';
import { buildFirst } from './lib/fixtures.js';
import { type ScenarioResult, writeResult } from './lib/measure.js';
import { batch } from './scenarios/batch.js';
import { cluster } from './scenarios/cluster.js';
import { connectStorm } from './scenarios/connect-storm.js';
import { guarantees } from './scenarios/guarantees.js';
import { idleMemory } from './scenarios/idle-memory.js';
import { presenceLag } from './scenarios/presence-lag.js';
import { pushMemory, pushRedis } from './scenarios/push.js';

const SCENARIOS: Record<string, (quick: boolean) => Promise<ScenarioResult>> = {
  push: pushMemory,
  redis: pushRedis,
  batch,
  connect: connectStorm,
  memory: idleMemory,
  presence: presenceLag,
  cluster,
  guarantees,
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const names = args.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !(n in SCENARIOS));
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  buildFirst();
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}`;
  const inputs: Record<string, number> = {};
  const started = Date.now();
  for (const name of names.length > 0 ? names : Object.keys(SCENARIOS)) {
    const before = loadavg()[0]!.toFixed(2);
    const scenarioStart = Date.now();
    const result = await SCENARIOS[name]!(quick);
    const load = `load average ${before} before, ${loadavg()[0]!.toFixed(2)} after`;
    console.log(
      `\n${writeResult(result, { quick, machine, load, date: new Date().toISOString(), seconds: (Date.now() - scenarioStart) / 1000 })}`,
    );
    Object.assign(inputs, result.inputs);
  }
  console.log('## Capacity-model inputs (this run)\n');
  for (const [input, value] of Object.entries(inputs)) console.log(`${input.padEnd(56)} ${value.toFixed(3)}`);
  console.log(`\n${((Date.now() - started) / 1000).toFixed(0)} s${quick ? ' (--quick: small sizes, figures are indicative only)' : ''}`);
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => cleanUp());
