/**
 * The ledger of a reliability scenario: what callers asked and were told, what clients received
 * and acked, and when each session lived. `checkLedger` turns it into violations (a rule broken:
 * the scenario fails) and figures (ambiguous results, inbox recoveries), as issue 13 lists them.
 *
 * Times are milliseconds on one clock shared by every process of a run (`Date.now()`): the
 * processes run on one machine, and the checks allow `graceMs` for what lies between them.
 */

/** A per-session result as the caller saw it (DeliveryStatus, lower case, without the prefix). */
export type ResultStatus = 'acked' | 'timeout' | 'disconnected' | 'failed' | 'pending' | 'sent' | 'unknown';

/** One PushToUser call, logged by the caller. */
export interface CallRecord {
  readonly messageId: string;
  readonly userId: string;
  /** The user's sequence number of this push (1, 2, …); carried in the pushed data too. */
  readonly seq: number;
  readonly mode: 'live' | 'store_if_unacked';
  readonly startedMs: number;
  /** The call's gRPC deadline, as a duration from `startedMs`. */
  readonly deadlineMs: number;
  /** Unset while the call has not ended (a hang, when the scenario is checked). */
  endedMs?: number;
  /** The gRPC status code the call ended with (0 = OK). */
  code?: number;
  /** The response's `stored`, for storing pushes. */
  stored?: boolean;
  results: { readonly sessionId: string; readonly status: ResultStatus }[];
}

/** One event a client received, logged by the client (its fleet process). */
export interface ReceiptRecord {
  /** The receiving session, and the user it authenticated as. */
  readonly sessionId: string;
  readonly userId: string;
  readonly messageId: string;
  /** The user the push was addressed to (the caller puts it in the data). */
  readonly addressedTo: string;
  readonly seq: number;
  readonly atMs: number;
  /** Whether the client sent the ack (it may vanish instead, as a scenario asks); a delayed ack sets it when sent. */
  acked: boolean;
  readonly replay: boolean;
}

/** A session's life as its client saw it: from the Socket.IO connect to its close (if it closed). */
export interface SessionSpan {
  readonly sessionId: string;
  readonly userId: string;
  readonly connectedMs: number;
  closedMs?: number;
}

export interface Ledger {
  readonly calls: readonly CallRecord[];
  readonly receipts: readonly ReceiptRecord[];
  readonly sessions: readonly SessionSpan[];
}

export interface LedgerOptions {
  /** What may lie between two processes' views of one moment (IPC, scheduling). Default 250. */
  readonly graceMs?: number;
  /** How late after its deadline a call may end (rule 1). Default 250. */
  readonly lateMs?: number;
}

export type Rule = 'hang' | 'false_ack' | 'duplicate_ack' | 'misaddressed' | 'foreign_result' | 'missing_result' | 'lost';

export interface Violation {
  readonly rule: Rule;
  readonly messageId: string;
  readonly detail: string;
}

export interface LedgerReport {
  readonly calls: number;
  readonly okCalls: number;
  /** Calls that did not end OK, by gRPC status code name or number. */
  readonly failedCalls: Record<string, number>;
  readonly acked: number;
  readonly receipts: number;
  /** Results that were not ACKED although the message arrived (allowed for LIVE, reported). */
  readonly ambiguous: number;
  /** Storing pushes not acked live and acked after a reconnect (a replay). */
  readonly recoveredFromInbox: number;
  readonly violations: readonly Violation[];
}

/** At most this many violations of one rule are kept with details; the rest are only counted. */
const DETAILS_PER_RULE = 20;

/** Checks the ledger's rules 1–5; rule 6 (the registry after a fault) is `checkConvergence`. */
export function checkLedger(ledger: Ledger, options: LedgerOptions = {}): LedgerReport {
  const graceMs = options.graceMs ?? 250;
  const lateMs = options.lateMs ?? 250;
  const violations: Violation[] = [];
  const perRule = new Map<Rule, number>();
  const violate = (rule: Rule, messageId: string, detail: string): void => {
    const n = (perRule.get(rule) ?? 0) + 1;
    perRule.set(rule, n);
    if (n <= DETAILS_PER_RULE) violations.push({ rule, messageId, detail });
  };

  const spanOf = new Map(ledger.sessions.map((s) => [s.sessionId, s]));
  const spansOfUser = new Map<string, SessionSpan[]>();
  for (const span of ledger.sessions) {
    const list = spansOfUser.get(span.userId) ?? [];
    list.push(span);
    spansOfUser.set(span.userId, list);
  }
  // receipts by message, then session
  const byMessage = new Map<string, Map<string, ReceiptRecord[]>>();
  for (const receipt of ledger.receipts) {
    if (receipt.addressedTo !== receipt.userId)
      violate('misaddressed', receipt.messageId, `session ${receipt.sessionId} of ${receipt.userId} got a push for ${receipt.addressedTo}`);
    let sessions = byMessage.get(receipt.messageId);
    if (sessions === undefined) {
      sessions = new Map();
      byMessage.set(receipt.messageId, sessions);
    }
    const list = sessions.get(receipt.sessionId) ?? [];
    list.push(receipt);
    sessions.set(receipt.sessionId, list);
  }

  let okCalls = 0;
  const failedCalls: Record<string, number> = {};
  let acked = 0;
  let ambiguous = 0;
  let recovered = 0;
  for (const call of ledger.calls) {
    const { messageId } = call;
    if (call.endedMs === undefined || call.code === undefined) {
      violate('hang', messageId, `never ended (deadline ${call.deadlineMs} ms)`);
      continue;
    }
    const took = call.endedMs - call.startedMs;
    if (took > call.deadlineMs + lateMs) violate('hang', messageId, `ended after ${took} ms, deadline ${call.deadlineMs} ms`);
    if (call.code !== 0) {
      failedCalls[call.code] = (failedCalls[call.code] ?? 0) + 1;
      continue;
    }
    okCalls++;
    const received = byMessage.get(messageId) ?? new Map<string, ReceiptRecord[]>();
    const seen = new Set<string>();
    let ackedLive = false;
    for (const result of call.results) {
      const { sessionId, status } = result;
      if (seen.has(sessionId)) violate('duplicate_ack', messageId, `session ${sessionId} has two results`);
      seen.add(sessionId);
      const span = spanOf.get(sessionId);
      if (span !== undefined && span.userId !== call.userId)
        violate('foreign_result', messageId, `a result for session ${sessionId} of ${span.userId}, pushed to ${call.userId}`);
      const got = (received.get(sessionId) ?? []).filter((r) => !r.replay);
      const ackedBySession = got.filter((r) => r.acked).length;
      if (status === 'acked') {
        acked++;
        ackedLive = true;
        if (ackedBySession === 0) violate('false_ack', messageId, `ACKED for session ${sessionId}, which never acked it`);
        if (ackedBySession > 1) violate('duplicate_ack', messageId, `session ${sessionId} acked it ${ackedBySession} times live`);
      } else if (got.length > 0 && (status === 'timeout' || status === 'disconnected' || status === 'failed')) {
        ambiguous++;
      }
    }
    // Rule 4: a session of the user that lived through the whole call has a result in it.
    for (const span of spansOfUser.get(call.userId) ?? []) {
      const before = span.connectedMs <= call.startedMs - graceMs;
      const after = span.closedMs === undefined || span.closedMs >= call.endedMs + graceMs;
      if (before && after && !seen.has(span.sessionId))
        violate('missing_result', messageId, `session ${span.sessionId} was connected throughout and has no result`);
    }
    if (call.mode === 'store_if_unacked' && !ackedLive) {
      const replayAcked = [...received.values()].some((list) => list.some((r) => r.replay && r.acked));
      if (replayAcked) recovered++;
      else violate('lost', messageId, `not acked live (stored: ${String(call.stored)}) and never acked after a reconnect`);
    }
  }
  for (const [rule, n] of perRule)
    if (n > DETAILS_PER_RULE) violations.push({ rule, messageId: '', detail: `… and ${n - DETAILS_PER_RULE} more` });
  return {
    calls: ledger.calls.length,
    okCalls,
    failedCalls,
    acked,
    receipts: ledger.receipts.length,
    ambiguous,
    recoveredFromInbox: recovered,
    violations,
  };
}

/** A presence event as a WatchPresence stream delivered it (only what replaying needs). */
export interface PresenceChange {
  readonly kind: 'connected' | 'disconnected';
  readonly userId: string;
  readonly sessionId: string;
}

export interface ConvergenceReport {
  /** Sessions the registry lists that no client holds, and the reverse. */
  readonly extra: string[];
  readonly missing: string[];
  /** Each presence stream replayed in order, against the truth (same shape). */
  readonly streams: { readonly extra: string[]; readonly missing: string[] }[];
  readonly converged: boolean;
}

/**
 * Rule 6: the registry's sessions (ListSessions) equal the clients' ground truth, and each
 * presence stream's events, applied in order to what it started from, reproduce that truth.
 */
export function checkConvergence(
  truth: ReadonlySet<string>,
  listed: ReadonlySet<string>,
  streams: readonly { readonly initial: ReadonlySet<string>; readonly events: readonly PresenceChange[] }[] = [],
): ConvergenceReport {
  const diff = (have: ReadonlySet<string>) => ({
    extra: [...have].filter((s) => !truth.has(s)).sort(),
    missing: [...truth].filter((s) => !have.has(s)).sort(),
  });
  const registry = diff(listed);
  const replayed = streams.map(({ initial, events }) => {
    const sessions = new Set(initial);
    for (const event of events) {
      if (event.kind === 'connected') sessions.add(event.sessionId);
      else sessions.delete(event.sessionId);
    }
    return diff(sessions);
  });
  const clean = (d: { extra: string[]; missing: string[] }): boolean => d.extra.length === 0 && d.missing.length === 0;
  return { ...registry, streams: replayed, converged: clean(registry) && replayed.every(clean) };
}
