import type { LedgerReport } from './ledger.js';

export interface ScenarioContext {
  /** The CI variant: the same checks at smaller sizes and shorter durations. */
  readonly quick: boolean;
  /** A scratch directory of this run (journals, logs). */
  readonly workDir: string;
  /** A progress line on the console. */
  log(message: string): void;
}

export interface ScenarioOutcome {
  /** Figures for the report, in the order given ("handshake p99 ms": 12.3). */
  readonly figures: Record<string, number | string>;
  /** The ledger's check, when the scenario kept one. Its violations fail the scenario. */
  readonly ledger?: LedgerReport;
  /** Other checks that failed, each a sentence saying what was expected and what was seen. */
  readonly failures: string[];
  /** What a reader of the report should know (a bound stated, a step skipped and why). */
  readonly notes?: string[];
}

export interface Scenario {
  readonly name: string;
  /** One line for the report: what it does. */
  readonly summary: string;
  run(context: ScenarioContext): Promise<ScenarioOutcome>;
}

/** Collects failed checks as sentences, for `ScenarioOutcome.failures`. */
export class Checks {
  readonly failures: string[] = [];

  expect(ok: boolean, what: string): void {
    if (!ok) this.failures.push(what);
  }
}
