/**
 * The reliability suite (`npm run soak`; `npm run soak -- --quick` in CI): scenarios that push
 * through pushgate under load and faults, checked against a ledger of what was sent, received and
 * acked. Writes reliability/results/<date>-<soak|quick>.{json,md}; exits 1 when a check failed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { cleanUp } from '../bench/lib/children.js';
import { buildFirst } from '../bench/lib/fixtures.js';
import { writeReport } from './lib/report.js';
import type { Scenario, ScenarioOutcome } from './lib/scenario.js';
import { SCENARIOS } from './scenarios/index.js';

const program = new Command('soak')
  .description('Run the reliability scenarios and write a report under reliability/results/')
  .option('--quick', 'the CI variant: the same checks at smaller sizes and shorter durations (a few minutes)')
  .option('--only <names>', `comma-separated scenarios (${SCENARIOS.map((s) => s.name).join(', ')})`)
  .parse();
const options = program.opts<{ quick?: boolean; only?: string }>();

const chosen: Scenario[] =
  options.only === undefined
    ? [...SCENARIOS]
    : options.only.split(',').map((name) => {
        const scenario = SCENARIOS.find((s) => s.name === name.trim());
        return scenario ?? program.error(`unknown scenario "${name}"; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
      });

const quick = options.quick === true;
// Single-node scenarios run pushgate from dist/, as the bench does (bench/lib/server.ts).
buildFirst();
const workDir = mkdtempSync(join(tmpdir(), 'pushgate-soak-'));
const outcomes: { scenario: Scenario; outcome: ScenarioOutcome; seconds: number }[] = [];
let failed = 0;
try {
  for (const scenario of chosen) {
    console.log(`\n== ${scenario.name}: ${scenario.summary}`);
    const started = performance.now();
    let outcome: ScenarioOutcome;
    try {
      outcome = await scenario.run({ quick, workDir, log: (m) => console.log(`   ${m}`) });
    } catch (err) {
      outcome = { figures: {}, failures: [`the scenario failed to run: ${(err as Error).stack ?? String(err)}`] };
    }
    await cleanUp();
    const seconds = (performance.now() - started) / 1000;
    outcomes.push({ scenario, outcome, seconds });
    const problems = outcome.failures.length + (outcome.ledger?.violations.length ?? 0);
    if (problems > 0) failed++;
    console.log(`   ${problems === 0 ? 'clean' : `${problems} problem(s)`} in ${seconds.toFixed(0)} s`);
    for (const [name, value] of Object.entries(outcome.figures)) console.log(`   ${name}: ${value}`);
    if (outcome.ledger !== undefined) {
      const { calls, okCalls, ambiguous, recoveredFromInbox } = outcome.ledger;
      console.log(`   ledger: ${calls} calls, ${okCalls} OK, ${ambiguous} ambiguous, ${recoveredFromInbox} recovered from the inbox`);
    }
    for (const failure of outcome.failures) console.log(`   FAILED: ${failure}`);
    for (const v of outcome.ledger?.violations ?? []) console.log(`   LEDGER ${v.rule} ${v.messageId}: ${v.detail}`);
  }
} finally {
  await cleanUp();
  rmSync(workDir, { recursive: true, force: true });
}
const written = writeReport(outcomes, quick, options.only !== undefined);
console.log(`\nreport: ${written.join(', ')}`);
if (failed > 0) {
  console.error(`\n${failed} of ${outcomes.length} scenarios failed`);
  process.exit(1);
}
console.log(`\nall ${outcomes.length} scenarios clean`);
process.exit(0);
