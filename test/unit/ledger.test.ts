import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CallRecord,
  checkConvergence,
  checkLedger,
  type Ledger,
  type ReceiptRecord,
  type Rule,
  type SessionSpan,
} from '../../reliability/lib/ledger.js';

// The reliability suite's verdicts come from this checker: a ledger that breaks a rule must be
// caught, and a clean one must pass, or every soak figure means nothing.

/** A clean ledger: users with sessions connected throughout, each call answered by every one of them. */
const cleanLedger = fc
  .record({
    users: fc.integer({ min: 1, max: 4 }),
    sessionsPerUser: fc.integer({ min: 1, max: 3 }),
    calls: fc.array(fc.record({ user: fc.nat(), acked: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }) }), {
      minLength: 1,
      maxLength: 12,
    }),
  })
  .map(({ users, sessionsPerUser, calls }): Ledger => {
    const sessions: SessionSpan[] = [];
    for (let u = 0; u < users; u++)
      for (let s = 0; s < sessionsPerUser; s++) sessions.push({ sessionId: `s${u}-${s}`, userId: `u${u}`, connectedMs: 0 });
    const receipts: ReceiptRecord[] = [];
    const records: CallRecord[] = calls.map(({ user, acked }, i) => {
      const userId = `u${user % users}`;
      const messageId = `m${i}`;
      const startedMs = 10_000 + i * 1000;
      const mine = sessions.filter((s) => s.userId === userId);
      const results = mine.map((s, k) => {
        const ack = acked[k] ?? true;
        receipts.push({
          sessionId: s.sessionId,
          userId,
          messageId,
          addressedTo: userId,
          seq: i + 1,
          atMs: startedMs + 5,
          acked: ack,
          replay: false,
        });
        return { sessionId: s.sessionId, status: ack ? ('acked' as const) : ('timeout' as const) };
      });
      return { messageId, userId, seq: i + 1, mode: 'live', startedMs, deadlineMs: 500, endedMs: startedMs + 100, code: 0, results };
    });
    return { calls: records, receipts, sessions };
  });

function rules(ledger: Ledger): Rule[] {
  return checkLedger(ledger).violations.map((v) => v.rule);
}

/** A copy whose call and receipt objects can be changed without touching the original. */
function copy(ledger: Ledger): { calls: CallRecord[]; receipts: ReceiptRecord[]; sessions: SessionSpan[] } {
  return structuredClone({ calls: [...ledger.calls], receipts: [...ledger.receipts], sessions: [...ledger.sessions] });
}

describe('checkLedger', () => {
  it('passes a clean ledger and counts its timeouts of delivered messages as ambiguous', () => {
    fc.assert(
      fc.property(cleanLedger, (ledger) => {
        const report = checkLedger(ledger);
        expect(report.violations).toEqual([]);
        const timeouts = ledger.calls.flatMap((c) => c.results).filter((r) => r.status === 'timeout').length;
        expect(report.ambiguous).toBe(timeouts);
        expect(report.okCalls).toBe(ledger.calls.length);
      }),
    );
  });

  it('finds an ACKED result its session never acked (false ack)', () => {
    fc.assert(
      fc.property(cleanLedger, (clean) => {
        const ledger = copy(clean);
        const i = ledger.receipts.findIndex((r) => r.acked);
        fc.pre(i >= 0);
        ledger.receipts.splice(i, 1);
        expect(rules(ledger)).toContain('false_ack');
      }),
    );
  });

  it('finds a session with two results in one call, or acking one message twice live', () => {
    fc.assert(
      fc.property(cleanLedger, (clean) => {
        const twice = copy(clean);
        twice.calls[0]!.results.push({ ...twice.calls[0]!.results[0]! });
        expect(rules(twice)).toContain('duplicate_ack');

        const again = copy(clean);
        const acked = again.receipts.find((r) => r.acked);
        fc.pre(acked !== undefined);
        again.receipts.push({ ...acked! });
        expect(rules(again)).toContain('duplicate_ack');
      }),
    );
  });

  it('finds a message received by a session of another user', () => {
    fc.assert(
      fc.property(cleanLedger, (clean) => {
        const ledger = copy(clean);
        ledger.receipts[0] = { ...ledger.receipts[0]!, addressedTo: 'someone-else' };
        expect(rules(ledger)).toContain('misaddressed');
      }),
    );
  });

  it('finds a session connected throughout a call that has no result in it, and not one that came or went during it', () => {
    fc.assert(
      fc.property(cleanLedger, (clean) => {
        const ledger = copy(clean);
        const call = ledger.calls[0]!;
        const dropped = call.results.pop()!;
        expect(rules(ledger)).toContain('missing_result');

        // The same session closing while the call ran (or opening just before it) is not owed a result.
        const span = ledger.sessions.find((s) => s.sessionId === dropped.sessionId)!;
        span.closedMs = call.startedMs + 50;
        const later = ledger.calls.filter((c) => c.startedMs > call.startedMs && c.userId === call.userId);
        for (const c of later) c.results = c.results.filter((r) => r.sessionId !== span.sessionId);
        ledger.receipts = ledger.receipts.filter((r) => r.sessionId !== span.sessionId || r.messageId === call.messageId);
        expect(rules(ledger)).not.toContain('missing_result');
      }),
    );
  });

  it('finds a call that never ended or ended well past its deadline', () => {
    fc.assert(
      fc.property(cleanLedger, fc.integer({ min: 251, max: 10_000 }), (clean, late) => {
        const open = copy(clean);
        delete open.calls[0]!.endedMs;
        expect(rules(open)).toContain('hang');

        const slow = copy(clean);
        const call = slow.calls[0]!;
        call.endedMs = call.startedMs + call.deadlineMs + late;
        expect(rules(slow)).toContain('hang');
      }),
    );
  });

  it('finds a result for a session of another user', () => {
    fc.assert(
      fc.property(cleanLedger, (clean) => {
        const ledger = copy(clean);
        ledger.sessions.push({ sessionId: 'intruder', userId: 'not-a-target', connectedMs: 0 });
        ledger.calls[0]!.results.push({ sessionId: 'intruder', status: 'timeout' });
        expect(rules(ledger)).toContain('foreign_result');
      }),
    );
  });

  it('counts a stored message acked after a reconnect as recovered, and one never acked as lost', () => {
    const sessions: SessionSpan[] = [
      { sessionId: 'a', userId: 'u', connectedMs: 0, closedMs: 1050 },
      { sessionId: 'b', userId: 'u', connectedMs: 5000 },
    ];
    const call = (messageId: string): CallRecord => ({
      messageId,
      userId: 'u',
      seq: 1,
      mode: 'store_if_unacked',
      startedMs: 1000,
      deadlineMs: 500,
      endedMs: 1100,
      code: 0,
      stored: true,
      results: [{ sessionId: 'a', status: 'disconnected' }],
    });
    const replayed: ReceiptRecord = {
      sessionId: 'b',
      userId: 'u',
      messageId: 'kept',
      addressedTo: 'u',
      seq: 1,
      atMs: 5001,
      acked: true,
      replay: true,
    };
    const report = checkLedger({ calls: [call('kept'), call('gone')], receipts: [replayed], sessions });
    expect(report.recoveredFromInbox).toBe(1);
    expect(report.violations).toEqual([expect.objectContaining({ rule: 'lost', messageId: 'gone' })]);
  });

  it('keeps details of at most 20 violations per rule and counts the rest', () => {
    const calls: CallRecord[] = Array.from({ length: 30 }, (_, i) => ({
      messageId: `m${i}`,
      userId: 'u',
      seq: i,
      mode: 'live',
      startedMs: 0,
      deadlineMs: 100,
      results: [],
    }));
    const report = checkLedger({ calls, receipts: [], sessions: [] });
    expect(report.violations).toHaveLength(21);
    expect(report.violations.at(-1)!.detail).toContain('10 more');
  });
});

describe('checkConvergence', () => {
  it('compares the registry with the truth and replays each presence stream from its snapshot', () => {
    const truth = new Set(['a', 'b']);
    expect(checkConvergence(truth, new Set(['a', 'b'])).converged).toBe(true);
    const off = checkConvergence(truth, new Set(['a', 'z']));
    expect([off.extra, off.missing, off.converged]).toEqual([['z'], ['b'], false]);

    const stream = {
      initial: new Set(['a', 'old']),
      events: [
        { kind: 'disconnected' as const, userId: 'u', sessionId: 'old' },
        { kind: 'connected' as const, userId: 'u', sessionId: 'b' },
      ],
    };
    expect(checkConvergence(truth, truth, [stream]).converged).toBe(true);
    // A lost disconnect leaves a session the stream's reader still believes in.
    const lossy = { ...stream, events: stream.events.slice(1) };
    expect(checkConvergence(truth, truth, [lossy]).streams[0]).toEqual({ extra: ['old'], missing: [] });
  });
});
