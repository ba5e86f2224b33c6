import type { Caller } from '../lib/caller.js';
import type { CallRecord, LedgerReport } from '../lib/ledger.js';
import { listedSessions, PresenceTap } from '../lib/registry-view.js';
import type { Checks } from '../lib/scenario.js';
import { checkPhase, countRule, type ExcusedWindow, failedByCode, mergeReports } from './cluster-ledger.js';
import { type ClusterRig, sleep } from './cluster-rig.js';

/** The node whose presence stream is watched and whose ListSessions is asked: never faulted. */
export const OBSERVER = 2;
export const ACK_TIMEOUT_MS = 2000;
export const DEADLINE_MS = 4000;
/** Fraction of bus frames the relays discard during the bus-drop fault. */
const BUS_DROP = 0.5;

export interface Sizes {
  readonly users: number;
  readonly ratePerSec: number;
  /** Pushing before each fault, and after its heal. */
  readonly leadMs: number;
  readonly tailMs: number;
  readonly freezeMs: number;
  readonly blackholeMs: number;
  readonly busDropMs: number;
  /** Sessions closed and as many opened during each Redis fault. */
  readonly churn: number;
  /** Convergence must come within this of the heal, or the scenario fails. */
  readonly boundMs: number;
}

interface FaultSpec {
  readonly name: string;
  readonly mode: CallRecord['mode'];
  /** From the injection to the heal. */
  readonly faultMs: number;
  inject(): Promise<void> | void;
  heal(): Promise<void> | void;
  /** The sessions the registry may legitimately lose in this fault (see ExcusedWindow); none when absent. */
  excuse?(): Promise<ExcusedWindow['sessions']>;
  /** Sessions close and open while the fault lasts. */
  readonly churn?: boolean;
}

/** What one fault phase left for the checks at the end (its calls are checked once every receipt is in). */
interface Phase {
  readonly name: string;
  readonly calls: CallRecord[];
  readonly window: ExcusedWindow | undefined;
  readonly figures: Record<string, number | string>;
}

/**
 * The faults of one three-node rig, one after another under a steady push load (the Caller,
 * round-robin over the nodes), each timed to convergence: the registry (ListSessions through the
 * observer) and a presence stream on the observer agree with the clients. The ledger is checked
 * per phase at the end, once every receipt (replays after reconnects included) is in.
 */
export class FaultRun {
  private readonly phases: Phase[] = [];
  /** Presence streams opened afresh because a fault left the previous one wrong. */
  private freshTaps = 0;
  private churnRound = 0;

  private constructor(
    private readonly rig: ClusterRig,
    private readonly caller: Caller,
    private readonly sizes: Sizes,
    private readonly checks: Checks,
    private readonly notes: string[],
    private readonly log: (message: string) => void,
    private presence: PresenceTap,
  ) {}

  /** Opens the presence stream (with its snapshot) and checks the rig agrees with its clients before any fault. */
  static async start(
    rig: ClusterRig,
    caller: Caller,
    sizes: Sizes,
    checks: Checks,
    notes: string[],
    log: (message: string) => void,
  ): Promise<FaultRun> {
    const tap = new PresenceTap(() => rig.client(OBSERVER));
    await tap.snapshot();
    const run = new FaultRun(rig, caller, sizes, checks, notes, log, tap);
    const start = await rig.waitConverged(OBSERVER, [tap], Date.now(), sizes.boundMs);
    checks.expect(start.ok, `the registry agrees with the clients before any fault; ${start.last}`);
    return run;
  }

  closeTap(): void {
    this.presence.close();
  }

  /** kill -9 and a new process, with storing pushes: users whose only session died get their messages after reconnecting. */
  async killAndRestart(node: number): Promise<void> {
    const { rig, caller, sizes } = this;
    const name = 'kill -9';
    this.log(`${name}: pushing store_if_unacked at ${sizes.ratePerSec}/s; node ${node} dies after ${sizes.leadMs} ms`);
    const from = caller.calls.length;
    const pushing = this.push('store_if_unacked', sizes.leadMs + 2 * sizes.tailMs + 3000);
    await sleep(sizes.leadMs);
    const killedAt = Date.now();
    await rig.nodes[node]!.child.kill();
    const reapMs = await this.converge(`${name} (reaped)`, killedAt);
    await pushing;
    await caller.drain();
    const restartedAt = Date.now();
    await rig.restartNode(node);
    const restartMs = Date.now() - restartedAt;
    const reconnect = await rig.fleets[node]!.connect(rig.targetsOf(node));
    this.checks.expect(
      reconnect.failed === 0,
      `every session reconnects to the restarted node; ${reconnect.failed} failed (${reconnect.firstError})`,
    );
    const ms = await this.converge(`${name} (restarted, reconnected)`, Date.now());
    this.phases.push({
      name,
      calls: caller.calls.slice(from),
      window: undefined,
      figures: {
        'ms from the kill until its sessions were reaped': reapMs,
        'restart ms': restartMs,
        'convergence ms after the reconnect': ms,
        'users whose only session died': rig.soloUsersOf(node).length,
      },
    });
  }

  /** Frozen (SIGSTOP) past its lease: the others reap its sessions; resumed, it must put them back. */
  async freeze(node: number): Promise<void> {
    const { rig, sizes } = this;
    let reapedWhileFrozen = 'not looked';
    const phase = await this.fault({
      name: 'freeze',
      mode: 'live',
      faultMs: sizes.freezeMs,
      inject: () => {
        process.kill(rig.nodes[node]!.pid, 'SIGSTOP');
      },
      heal: async () => {
        const held = await rig.truth([node]);
        const listed = await listedSessions(rig.client(OBSERVER), rig.userIds).catch(() => undefined);
        reapedWhileFrozen = listed === undefined ? 'unknown' : `${[...held].filter((s) => !listed.has(s)).length} of ${held.size}`;
        process.kill(rig.nodes[node]!.pid, 'SIGCONT');
      },
      excuse: () => rig.truth([node]),
    });
    phase.figures['sessions of the frozen node unlisted before the resume'] = reapedWhileFrozen;
  }

  /** Redis restarted empty: every node must register its sessions again; presence cursors are gone. */
  async redisRestart(): Promise<void> {
    const { redis } = this.rig;
    if (redis === undefined) throw new Error('the Redis restart needs the rig’s private redis-server');
    await this.fault({
      name: 'redis restart',
      mode: 'live',
      faultMs: 0,
      inject: () => redis.restart(),
      heal: () => undefined,
      excuse: async () => 'all',
      churn: true,
    });
  }

  /** Redis blackholed: connections accepted, nothing answered; what was held arrives at the heal. */
  async blackhole(): Promise<void> {
    const { relays } = this.rig;
    await this.fault({
      name: 'blackhole',
      mode: 'live',
      faultMs: this.sizes.blackholeMs,
      inject: () => {
        for (const relay of relays) relay.blackhole();
      },
      heal: () => {
        for (const relay of relays) relay.heal();
      },
      excuse: async () => 'all',
      churn: true,
    });
  }

  /** The bus loses messages: the registry is untouched, so every session must still have a result (nothing excused). */
  async busDrop(): Promise<void> {
    const { relays } = this.rig;
    const dropped = (): number => relays.reduce((n, r) => n + r.droppedFrames, 0);
    const before = dropped();
    const phase = await this.fault({
      name: 'bus drop',
      mode: 'live',
      faultMs: this.sizes.busDropMs,
      inject: () => {
        for (const relay of relays) relay.dropBus(BUS_DROP);
      },
      heal: () => {
        for (const relay of relays) relay.dropBus(0);
      },
    });
    phase.figures['bus frames dropped'] = dropped() - before;
  }

  /** Checks each phase's calls (every call must have ended); its figures, prefixed with the phase's name, and the merged report. */
  async ledger(): Promise<{ report: LedgerReport; figures: Record<string, number | string> }> {
    const { rig, caller } = this;
    await caller.drain(true);
    await Promise.all(rig.fleets.map((f) => f.drain()));
    const receipts = rig.fleets.flatMap((f) => f.receipts);
    const spans = rig.fleets.flatMap((f) => f.spans);
    const figures: Record<string, number | string> = {};
    const reports: LedgerReport[] = [];
    for (const phase of this.phases) {
      const { report, excusedMissing } = checkPhase(phase.calls, receipts, spans, phase.window);
      reports.push(report);
      const put = (key: string, value: number | string): void => {
        figures[`${phase.name}: ${key}`] = value;
      };
      put('calls', report.calls);
      put('failed calls', failedByCode(report));
      put('ambiguous results', report.ambiguous);
      if (phase.calls.some((c) => c.mode === 'store_if_unacked')) put('recovered from the inbox', report.recoveredFromInbox);
      for (const [key, value] of Object.entries(phase.figures)) put(key, value);
      if (phase.window !== undefined) put('results excused while the registry had lost sessions', excusedMissing);
      const broken = countAll(report);
      if (broken > 0) put('ledger violations', broken);
    }
    const phased = new Set(this.phases.flatMap((p) => p.calls));
    const stragglers = caller.calls.filter((c) => !phased.has(c));
    if (stragglers.length > 0) reports.push(checkPhase(stragglers, receipts, spans).report);
    figures['presence streams opened afresh after a fault did not converge'] = this.freshTaps;
    return { report: mergeReports(reports, receipts.length), figures };
  }

  private push(mode: CallRecord['mode'], durationMs: number): Promise<unknown> {
    return this.caller.push({
      addresses: this.rig.addresses(),
      users: this.rig.userIds,
      ratePerSec: this.sizes.ratePerSec,
      durationMs,
      mode,
      ackTimeoutMs: ACK_TIMEOUT_MS,
      deadlineMs: DEADLINE_MS,
    });
  }

  /** Waits for convergence from `fromMs`, expecting it within the bound; resolves with the ms it took. */
  private async converge(label: string, fromMs: number): Promise<number> {
    const { boundMs } = this.sizes;
    const result = await this.rig.waitConverged(OBSERVER, [this.presence], fromMs, boundMs);
    this.checks.expect(
      result.ok,
      `${label}: the registry and the presence stream agree with the clients within ${boundMs} ms; still: ${result.last}`,
    );
    this.log(`${label}: ${result.ok ? `converged in ${result.ms} ms` : `NOT converged after ${result.ms} ms (${result.last})`}`);
    if (!result.ok) {
      // The next faults are measured on their own: a new stream from a new snapshot, as a backend would open after noticing.
      this.presence.close();
      this.presence = new PresenceTap(() => this.rig.client(OBSERVER));
      await this.presence.snapshot();
      this.freshTaps++;
    }
    return result.ms;
  }

  /**
   * Clients coming and going during a fault: the oldest sessions of node 0 close, and new ones
   * open on node 1 (a refusal while Redis is away is allowed and counted). The registry and the
   * presence stream must account for both once Redis is back.
   */
  private async churn(): Promise<Record<string, number>> {
    const { rig, sizes } = this;
    const round = this.churnRound++;
    const users = rig.userIds.slice(round * sizes.churn, (round + 1) * sizes.churn);
    const targets = users.map((userId) => ({ userId, clientType: 'pc', url: rig.nodes[1]!.httpUrl }));
    const before = await rig.truth([1]);
    const [, opened] = await Promise.all([rig.fleets[0]!.close(sizes.churn), rig.fleets[1]!.connect(targets)]);
    if (opened.failed > 0) this.notes.push(`A session opened during a Redis fault was refused: ${opened.firstError}`);
    // A node may accept the Socket.IO connect and close the socket when registering fails: only the survivors count as opened.
    const kept = [...(await rig.truth([1]))].filter((s) => !before.has(s)).length;
    return {
      'sessions closed during the fault': sizes.churn,
      'sessions opened during the fault (open at the heal)': kept,
      'sessions refused or closed at once during the fault': targets.length - kept,
    };
  }

  /**
   * Pushes for lead + fault + tail; the fault starts after the lead (with churn, if asked, alongside).
   * Convergence is timed from the heal, or from the churn's end if that came later.
   */
  private async fault(spec: FaultSpec): Promise<Phase> {
    const { caller, sizes } = this;
    const { name, mode } = spec;
    this.log(`${name}: pushing ${mode} at ${sizes.ratePerSec}/s`);
    const from = caller.calls.length;
    const watched = this.presence;
    const refused = watched.refusals.length;
    const reopened = watched.reopened;
    const pushing = this.push(mode, sizes.leadMs + spec.faultMs + sizes.tailMs);
    await sleep(sizes.leadMs);
    const excused = spec.excuse === undefined ? undefined : await spec.excuse();
    const faultAt = Date.now();
    const injected = Promise.resolve(spec.inject());
    const churned = spec.churn === true ? this.churn() : Promise.resolve({});
    await injected;
    await sleep(spec.faultMs);
    await spec.heal();
    const churnFigures = await churned;
    const healedAt = Date.now();
    const ms = await this.converge(name, healedAt);
    await pushing;
    await caller.drain();
    const phase: Phase = {
      name,
      calls: caller.calls.slice(from),
      window: excused === undefined ? undefined : { fromMs: faultAt, toMs: healedAt + ms, sessions: excused },
      figures: {
        'convergence ms': ms,
        ...churnFigures,
        'presence resumes refused': watched.refusals.length - refused,
        'presence stream reopened': watched.reopened - reopened,
      },
    };
    this.phases.push(phase);
    return phase;
  }
}

/** Every violation of the report, the ones only counted included. */
function countAll(report: LedgerReport): number {
  return [...new Set(report.violations.map((v) => v.rule))].reduce((n, rule) => n + countRule(report, rule), 0);
}
