import { status } from '@grpc/grpc-js';
import { type CallRecord, checkLedger, type LedgerReport, type ReceiptRecord, type Rule, type SessionSpan } from '../lib/ledger.js';

/**
 * While the cluster has declared sessions gone that their clients still hold (a frozen node's,
 * reaped when its lease lapsed; every session, while Redis was empty or unreachable), a push
 * cannot name them: rule 4 (missing_result) does not apply to those sessions from the fault until
 * the registry converged again. Rule 6 (convergence) covers that window instead, with a bound.
 */
export interface ExcusedWindow {
  readonly fromMs: number;
  readonly toMs: number;
  /** The sessions the registry may have lost meanwhile; 'all' after Redis lost or hid everything. */
  readonly sessions: ReadonlySet<string> | 'all';
}

export interface PhaseLedger {
  readonly report: LedgerReport;
  /** Results rule 4 would have asked for inside the window (the sessions the registry had dropped). */
  readonly excusedMissing: number;
}

/**
 * Checks one fault phase's calls (rules 1–5). Calls that overlap `window` are checked against
 * spans in which the window's sessions ended when the window began, so a result the registry
 * could not know of is not asked for; every other rule applies to them unchanged.
 */
export function checkPhase(
  calls: readonly CallRecord[],
  receipts: readonly ReceiptRecord[],
  sessions: readonly SessionSpan[],
  window?: ExcusedWindow,
): PhaseLedger {
  if (window === undefined) return { report: checkLedger({ calls, receipts, sessions }), excusedMissing: 0 };
  const overlaps = (c: CallRecord): boolean => (c.endedMs ?? Number.POSITIVE_INFINITY) >= window.fromMs && c.startedMs <= window.toMs;
  const inside = calls.filter(overlaps);
  const outside = calls.filter((c) => !overlaps(c));
  const lost = (s: SessionSpan): boolean => window.sessions === 'all' || window.sessions.has(s.sessionId);
  const ended = sessions.map((s) =>
    lost(s) && (s.closedMs === undefined || s.closedMs > window.fromMs) ? { ...s, closedMs: window.fromMs } : s,
  );
  const strict = checkLedger({ calls: inside, receipts, sessions });
  const excused = checkLedger({ calls: inside, receipts, sessions: ended });
  const rest = checkLedger({ calls: outside, receipts, sessions });
  return {
    report: mergeReports([excused, rest], receipts.length),
    excusedMissing: countRule(strict, 'missing_result') - countRule(excused, 'missing_result'),
  };
}

/** One report of several checks over disjoint calls (the same receipts and sessions). */
export function mergeReports(reports: readonly LedgerReport[], receipts: number): LedgerReport {
  const failedCalls: Record<string, number> = {};
  for (const r of reports) for (const [code, n] of Object.entries(r.failedCalls)) failedCalls[code] = (failedCalls[code] ?? 0) + n;
  const sum = (pick: (r: LedgerReport) => number): number => reports.reduce((total, r) => total + pick(r), 0);
  return {
    calls: sum((r) => r.calls),
    okCalls: sum((r) => r.okCalls),
    failedCalls,
    acked: sum((r) => r.acked),
    receipts,
    ambiguous: sum((r) => r.ambiguous),
    recoveredFromInbox: sum((r) => r.recoveredFromInbox),
    violations: reports.flatMap((r) => r.violations),
  };
}

/** Violations of `rule`, the ones only counted ("… and N more") included. */
export function countRule(report: LedgerReport, rule: Rule): number {
  let n = 0;
  for (const v of report.violations) {
    if (v.rule !== rule) continue;
    const more = /^… and (\d+) more$/.exec(v.detail);
    n += more === null ? 1 : Number(more[1]);
  }
  return n;
}

/** Failed calls by gRPC status name, for a figure: "UNAVAILABLE 12, DEADLINE_EXCEEDED 3" ("none"). */
export function failedByCode(report: LedgerReport): string {
  const parts = Object.entries(report.failedCalls)
    .sort(([, a], [, b]) => b - a)
    .map(([code, n]) => `${status[Number(code)] ?? code} ${n}`);
  return parts.length === 0 ? 'none' : parts.join(', ');
}
