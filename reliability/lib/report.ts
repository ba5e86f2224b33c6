import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import type { Scenario, ScenarioOutcome } from './scenario.js';

const RESULTS = new URL('../results/', import.meta.url);

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/**
 * Writes the run's report as JSON and markdown; returns the paths. A run of some scenarios only
 * (`--only`) names them in the file name, so it never replaces the report of a whole run.
 */
export function writeReport(
  runs: readonly { scenario: Scenario; outcome: ScenarioOutcome; seconds: number }[],
  quick: boolean,
  partial: boolean,
): string[] {
  mkdirSync(RESULTS, { recursive: true });
  const date = new Date().toISOString().slice(0, 10);
  const only = partial ? `-${runs.map((r) => r.scenario.name).join('+')}` : '';
  const base = `${date}-${quick ? 'quick' : 'soak'}${only}`;
  const meta = {
    date: new Date().toISOString(),
    variant: quick ? 'quick' : 'soak',
    commit: commit(),
    node: process.version,
    cpus: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
  };
  const scenarios = runs.map(({ scenario, outcome, seconds }) => ({
    name: scenario.name,
    summary: scenario.summary,
    seconds: Math.round(seconds),
    clean: outcome.failures.length === 0 && (outcome.ledger?.violations.length ?? 0) === 0,
    ...outcome,
  }));
  const json = new URL(`${base}.json`, RESULTS);
  writeFileSync(json, `${JSON.stringify({ ...meta, scenarios }, null, 2)}\n`);

  const lines = [
    `# Reliability report: ${meta.variant}, ${meta.date.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Commit ${meta.commit}, Node ${meta.node}, ${meta.cpus} cores, ${meta.memoryGiB} GiB. Reproduce: \`npm run soak${quick ? ' -- --quick' : ''}\`.`,
    '',
    '| scenario | result | seconds | calls | ambiguous | recovered from inbox |',
    '|---|---|---:|---:|---:|---:|',
    ...scenarios.map(
      (s) =>
        `| ${s.name} | ${s.clean ? 'clean' : '**FAILED**'} | ${s.seconds} | ${s.ledger?.calls ?? '–'} | ${s.ledger?.ambiguous ?? '–'} | ${s.ledger?.recoveredFromInbox ?? '–'} |`,
    ),
  ];
  for (const s of scenarios) {
    lines.push('', `## ${s.name}`, '', s.summary, '', '| figure | value |', '|---|---:|');
    for (const [name, value] of Object.entries(s.figures)) lines.push(`| ${name} | ${value} |`);
    if (s.ledger !== undefined)
      lines.push(
        '',
        `Ledger: ${s.ledger.calls} calls (${s.ledger.okCalls} OK), ${s.ledger.acked} ACKED results, ${s.ledger.receipts} client receipts, ` +
          `${s.ledger.ambiguous} ambiguous, ${s.ledger.recoveredFromInbox} recovered from the inbox, ${s.ledger.violations.length} violations.`,
      );
    for (const v of s.ledger?.violations ?? []) lines.push(`- ledger **${v.rule}** ${v.messageId}: ${v.detail}`);
    for (const f of s.failures) lines.push(`- **failed**: ${f}`);
    for (const n of s.notes ?? []) lines.push(`- ${n}`);
  }
  const md = new URL(`${base}.md`, RESULTS);
  writeFileSync(md, `${lines.join('\n')}\n`);
  return [json.pathname, md.pathname];
}
