import { type BenchServer, startServer } from '../../bench/lib/fixtures.js';
import { startTcpProxy } from '../../test/support/cluster.js';
import { Caller } from '../lib/caller.js';
import { Fleet } from '../lib/fleet.js';
import { type Internals, internals, percentile, sleep, within } from '../lib/internals.js';
import { type CallRecord, checkConvergence, checkLedger, type ReceiptRecord, type SessionSpan } from '../lib/ledger.js';
import { listedSessions } from '../lib/registry-view.js';
import { Checks, type Scenario, type ScenarioContext, type ScenarioOutcome } from '../lib/scenario.js';
import { backToBaseline, loopDelay, timeUntilUnlisted } from './gone-support.js';

/**
 * Issue 13, "clients gone mid-ack": a push is out to a session and the session vanishes before it
 * acks, in five ways — it closes its socket on receiving (disconnect), its process is SIGKILLed,
 * its process is SIGSTOPped (the node must find it by ping timeout), the TCP relay it connects
 * through resets its connections (cut, reset), or holds every byte in silence (cut, silent: ping
 * timeout again). Each user also has a healthy session on the node that acks at once: every call
 * must come back with the vanished session DISCONNECTED (or TIMEOUT) and the healthy one ACKED,
 * and after each way the node must hold nothing more than before it (waits, sessions, sockets,
 * timers) and list exactly the sessions the clients still hold.
 */

const PING_INTERVAL_MS = 500;
const PING_TIMEOUT_MS = 500;
const ACK_TIMEOUT_MS = 5000;
const PUSH_RATE_PER_S = 200;
/**
 * What a loaded 2-core machine may add to the time the node needs to settle a vanished session
 * (at once on a close; ping interval + timeout for a silent client) before it counts as late. It
 * stays below the ack timeout, so a session settled only by the timeout is always late.
 */
const DETECTION_SLACK_MS = 2000;

type WayName = 'disconnect' | 'killed' | 'stopped' | 'cut-reset' | 'cut-silent';

interface Way {
  readonly name: WayName;
  /** The figures' prefix. */
  readonly label: string;
  /** Whether the node can only find the vanished session by its ping timeout. */
  readonly silent: boolean;
}

const WAYS: readonly Way[] = [
  { name: 'disconnect', label: 'disconnect', silent: false },
  { name: 'killed', label: 'killed', silent: false },
  { name: 'stopped', label: 'stopped', silent: true },
  { name: 'cut-reset', label: 'cut (reset)', silent: false },
  { name: 'cut-silent', label: 'cut (silent)', silent: true },
];

/** What all ways share: the node, the caller, the healthy sessions, and the merged ledger's parts. */
interface Rig {
  readonly ctx: ScenarioContext;
  readonly server: BenchServer;
  readonly caller: Caller;
  /** One process whose sessions ack at once: each user's healthy session. */
  readonly healthy: Fleet;
  /** The node idle, before any session of a way. */
  readonly baseline: Internals;
  /** Every fleet of vanishing sessions, for the merged ledger. */
  readonly vanishingFleets: Fleet[];
  readonly checks: Checks;
  readonly figures: Record<string, number | string>;
  readonly notes: string[];
}

/** What one way's rounds left to judge. */
interface Episode {
  readonly users: string[];
  /** The vanishing sessions, and when each one's fault happened (unset: at its receipt, for disconnect). */
  readonly vanishing: Set<string>;
  readonly faultMs: Map<string, number>;
  /** Per vanished session, fault → missing from ListSessions, where measured. */
  readonly unlistedMs: number[];
  readonly stillListed: string[];
  readonly sweepMs: number[];
  /** This way's fleets of vanishing sessions; `live` ones still run (their truth counts). */
  readonly fleets: Fleet[];
  readonly live: Fleet[];
  /** Processes killed or stopped. */
  processes: number;
}

export const goneMidAck: Scenario = {
  name: 'gone-mid-ack',
  summary:
    'Sessions gone while a push awaits their ack — closed on receipt, process SIGKILLed, process SIGSTOPped, relay reset, relay silent — ' +
    '1,000 per way (quick: 40), each beside a healthy session of the same user',
  async run(ctx) {
    const perWay = ctx.quick ? { rounds: 2, perRound: 20 } : { rounds: 10, perRound: 100 };
    const server = await startServer('gone-mid-ack', 'pushgate', {
      PUSHGATE_PING_INTERVAL_MS: String(PING_INTERVAL_MS),
      PUSHGATE_PING_TIMEOUT_MS: String(PING_TIMEOUT_MS),
    });
    const started: { stop(): Promise<void> }[] = [server];
    try {
      const [caller, healthy] = await Promise.all([Caller.start(1), Fleet.start(1)]);
      started.push(caller, healthy);
      await healthy.behave({ onReceive: 'ack', ackDelayMs: 0 });
      // A push to nobody and a ListSessions first, so both gRPC channels (the caller's, this
      // process's) and the node's lazy parts are in the baseline.
      await caller.push({ addresses: [server.grpcAddress], users: ['gone-warm-up'], ratePerSec: 10, durationMs: 100 });
      await listedSessions(server.client, ['gone-warm-up']);
      const rig: Rig = {
        ctx,
        server,
        caller,
        healthy,
        baseline: await internals(server, { gc: true }),
        vanishingFleets: [],
        checks: new Checks(),
        figures: {
          'ping interval ms': PING_INTERVAL_MS,
          'ping timeout ms': PING_TIMEOUT_MS,
          'ack timeout ms': ACK_TIMEOUT_MS,
        },
        notes: [],
      };
      for (const way of WAYS) {
        const episode = await runWay(rig, way, perWay.rounds, perWay.perRound);
        started.push(...episode.fleets);
        await judgeWay(rig, way, episode);
      }
      await caller.drain(true);
      const receipts: ReceiptRecord[] = [...healthy.receipts, ...rig.vanishingFleets.flatMap((f) => f.receipts)];
      const spans: SessionSpan[] = [...healthy.spans, ...rig.vanishingFleets.flatMap((f) => f.spans)];
      const ledger = checkLedger({ calls: caller.calls, receipts, sessions: spans });
      rig.notes.push(
        `"noticed" is the call's end minus the fault (kill, SIGSTOP, relay cut; for disconnect the client's receipt, after which it closes at once): ` +
          'an upper bound of when the node settled the vanished session, as the healthy session acks at once.',
        `"unlisted" polls ListSessions of the round's users from the fault on; its resolution is one sweep (p50 listed per way).`,
        'Vanishing sessions ignore the push (they never ack), so every one of them is gone with its ack outstanding.',
        `"disconnect" is the client's socket.disconnect() on receipt (a Socket.IO disconnect packet, then the close). ` +
          `Killed and stopped count sessions: ${perWay.rounds} processes of ${perWay.perRound} sessions each, one fresh process per round.`,
      );
      const outcome: ScenarioOutcome = { figures: rig.figures, ledger, failures: rig.checks.failures, notes: rig.notes };
      return outcome;
    } finally {
      await Promise.all(started.reverse().map((s) => s.stop().catch(() => undefined)));
    }
  },
};

/** Runs `rounds` rounds of `perRound` sessions gone mid-ack in one way (disconnect: one round of all). */
async function runWay(rig: Rig, way: Way, rounds: number, perRound: number): Promise<Episode> {
  const { ctx, server } = rig;
  const episode: Episode = {
    users: [],
    vanishing: new Set(),
    faultMs: new Map(),
    unlistedMs: [],
    stillListed: [],
    sweepMs: [],
    fleets: [],
    live: [],
    processes: 0,
  };
  const started = Date.now();
  await loopDelay(server);
  // Fleets that outlive a round: the one closing on receipt, the one behind the relays.
  let shared: Fleet | undefined;
  if (way.name === 'disconnect' || way.name === 'cut-reset' || way.name === 'cut-silent') {
    shared = await Fleet.start(1);
    await shared.behave({ onReceive: way.name === 'disconnect' ? 'disconnect' : 'ignore' });
    episode.fleets.push(shared);
    episode.live.push(shared);
  }
  const [, httpPort] = /:(\d+)$/.exec(server.httpUrl) ?? [];
  for (let round = 0; round < (way.name === 'disconnect' ? 1 : rounds); round++) {
    const count = way.name === 'disconnect' ? rounds * perRound : perRound;
    const users = Array.from({ length: count }, (_, i) => `gone-${way.name}-${round}-${i}`);
    episode.users.push(...users);
    if (way.name === 'disconnect') {
      await midAck(rig, episode, users, shared!, server.httpUrl, undefined);
    } else if (way.name === 'killed' || way.name === 'stopped') {
      // A fresh process per round, journaled so that what it logged before dying survives it.
      const fleet = await Fleet.start(1, ctx.workDir);
      episode.fleets.push(fleet);
      await fleet.behave({ onReceive: 'ignore' });
      const proc = fleet.procs[0]!;
      episode.processes++;
      if (way.name === 'killed') {
        await midAck(rig, episode, users, fleet, server.httpUrl, async () => {
          const at = Date.now();
          await fleet.kill(proc);
          return at;
        });
      } else {
        await midAck(rig, episode, users, fleet, server.httpUrl, async () => {
          process.kill(proc.pid, 'SIGSTOP');
          return Date.now();
        });
        // Found by the node: now it may die (a stopped process takes SIGKILL).
        await fleet.kill(proc);
      }
    } else {
      const relay = await startTcpProxy(Number(httpPort));
      try {
        await midAck(rig, episode, users, shared!, `http://127.0.0.1:${relay.port}`, async () => {
          const at = Date.now();
          if (way.name === 'cut-reset') await relay.cut();
          else relay.stall();
          return at;
        });
      } finally {
        await relay.close();
      }
    }
  }
  rig.vanishingFleets.push(...episode.fleets);
  ctx.log(`${way.label}: ${episode.vanishing.size} sessions gone mid-ack in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return episode;
}

/**
 * One round: each user gets a vanishing session (in `fleet`, through `url`) and a healthy one;
 * one push per user; once every vanishing session has the push, `fault()` (answering when it
 * struck) — or, without one, the sessions close on receipt themselves. Resolves when every call ended.
 */
async function midAck(
  rig: Rig,
  episode: Episode,
  users: readonly string[],
  fleet: Fleet,
  url: string,
  fault: (() => Promise<number>) | undefined,
): Promise<void> {
  const { server, caller, healthy, checks } = rig;
  const [vanish, good] = await Promise.all([
    fleet.connect(users.map((userId) => ({ userId, clientType: 'app', url }))),
    healthy.connect(users.map((userId) => ({ userId, clientType: 'web', url: server.httpUrl }))),
  ]);
  checks.expect(
    vanish.failed + good.failed === 0,
    `sessions failed to connect (${vanish.failed + good.failed}): ${vanish.firstError || good.firstError}`,
  );
  // Users are new each round: their sessions in `fleet` are this round's vanishing ones.
  const userSet = new Set(users);
  await fleet.drain();
  const ids = new Set(fleet.spans.filter((s) => userSet.has(s.userId)).map((s) => s.sessionId));
  for (const id of ids) episode.vanishing.add(id);
  const pushing = caller.push({
    addresses: [server.grpcAddress],
    users,
    ratePerSec: PUSH_RATE_PER_S,
    durationMs: (users.length * 1000) / PUSH_RATE_PER_S,
    ackTimeoutMs: ACK_TIMEOUT_MS,
  });
  if (fault === undefined) {
    await pushing;
    return;
  }
  // Strike once every vanishing session holds its push unacked: then each is gone mid-ack.
  const received = (): number => new Set(fleet.receipts.filter((r) => ids.has(r.sessionId)).map((r) => r.sessionId)).size;
  const { ok: allReceived } = await within(
    ACK_TIMEOUT_MS / 2,
    async () => {
      await fleet.drain();
      return received() === ids.size;
    },
    20,
  );
  checks.expect(allReceived, `only ${received()} of ${ids.size} vanishing sessions got their push within ${ACK_TIMEOUT_MS / 2} ms`);
  // At a random point of the ping cycle: the sessions of a round connected together, so a fixed
  // delay would always strike at the same phase and measure one detection time only.
  await sleep(Math.random() * PING_INTERVAL_MS);
  const faultMs = await fault();
  for (const id of ids) episode.faultMs.set(id, faultMs);
  const unlisted = await timeUntilUnlisted(server, users, ids, faultMs, ACK_TIMEOUT_MS * 2);
  episode.unlistedMs.push(...unlisted.goneMs);
  episode.stillListed.push(...unlisted.stillListed);
  episode.sweepMs.push(unlisted.sweepMs);
  await pushing;
}

/** Checks one way's calls, registry and node, and writes its figures. */
async function judgeWay(rig: Rig, way: Way, episode: Episode): Promise<void> {
  const { server, caller, healthy, baseline, checks, figures } = rig;
  const { label } = way;
  const userSet = new Set(episode.users);
  const callsBefore = caller.calls.length;
  await caller.drain(true);
  const calls = caller.calls.slice(callsBefore).filter((c) => userSet.has(c.userId));
  await Promise.all([healthy.drain(), ...episode.fleets.map((f) => f.drain())]);
  const mine = <T extends { userId: string }>(list: readonly T[]): T[] => list.filter((x) => userSet.has(x.userId));
  const receiptsOf = (fleets: readonly Fleet[]): ReceiptRecord[] => fleets.flatMap((f) => mine(f.receipts));
  const vanishingReceipts = receiptsOf(episode.fleets);

  // Every call: the vanished session DISCONNECTED or TIMEOUT, the healthy one ACKED, nothing else.
  const statuses = new Map<string, number>();
  const noticedMs: number[] = [];
  const receivedAt = new Map(vanishingReceipts.map((r) => [`${r.messageId} ${r.sessionId}`, r.atMs]));
  // How long a push took to reach the healthy session: the machine's load, for reading "noticed".
  const startedAt = new Map(calls.map((c) => [c.messageId, c.startedMs]));
  const deliveredMs = mine(healthy.receipts)
    .filter((r) => startedAt.has(r.messageId))
    .map((r) => r.atMs - startedAt.get(r.messageId)!);
  let gone = 0;
  const wrong: string[] = [];
  for (const call of calls) {
    const vanished = call.results.filter((r) => episode.vanishing.has(r.sessionId));
    const others = call.results.filter((r) => !episode.vanishing.has(r.sessionId));
    const problem = callProblem(call, vanished, others);
    if (problem !== '') wrong.push(`${call.messageId} to ${call.userId}: ${problem}`);
    for (const { sessionId, status } of vanished) {
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      const arrived = receivedAt.get(`${call.messageId} ${sessionId}`);
      if (arrived !== undefined && status !== 'acked') gone++;
      const fault = episode.faultMs.get(sessionId) ?? arrived;
      if (fault !== undefined && call.endedMs !== undefined) noticedMs.push(call.endedMs - fault);
    }
  }
  checks.expect(
    calls.length === episode.users.length,
    `${label}: ${calls.length} calls for ${episode.users.length} users (one each expected)`,
  );
  checks.expect(
    wrong.length === 0,
    `${label}: ${wrong.length} calls without (vanished DISCONNECTED/TIMEOUT, healthy ACKED): ${wrong.slice(0, 3).join('; ')}`,
  );
  checks.expect(
    gone === episode.vanishing.size,
    `${label}: ${gone} of ${episode.vanishing.size} vanishing sessions were gone mid-ack (the rest vanished before the push reached them or acked)`,
  );
  checks.expect(
    episode.stillListed.length === 0,
    `${label}: ${episode.stillListed.length} vanished sessions still listed by ListSessions ${ACK_TIMEOUT_MS * 2} ms after the fault: ${episode.stillListed.slice(0, 3).join(', ')}`,
  );
  // The node hears a close at once, and finds a silent client within ping interval + timeout: a
  // result settled only by the ack timeout (a wait nobody told of the close) shows here.
  const bound = (way.silent ? PING_INTERVAL_MS + PING_TIMEOUT_MS : 0) + DETECTION_SLACK_MS;
  const noticedP99 = percentile(noticedMs, 99);
  checks.expect(
    noticedP99 <= bound,
    `${label}: calls ended p99 ${Math.round(noticedP99)} ms after the fault, over ${way.silent ? 'ping interval + timeout + ' : ''}${DETECTION_SLACK_MS} ms slack (${bound} ms)`,
  );
  if (episode.unlistedMs.length > 0) {
    // One ListSessions sweep is the polling's resolution.
    const unlistedP99 = percentile(episode.unlistedMs, 99);
    const sweep = Math.max(...episode.sweepMs);
    checks.expect(
      unlistedP99 <= bound + sweep,
      `${label}: vanished sessions left ListSessions p99 ${unlistedP99} ms after the fault, over ${bound} ms + one sweep (${Math.round(sweep)} ms)`,
    );
  }

  // The registry lists exactly what the clients still hold (the healthy sessions, the live fleets' ones).
  const truthNow = async (): Promise<Set<string>> => {
    const maps = await Promise.all([healthy.truth(), ...episode.live.map((f) => f.truth())]);
    return new Set(maps.flatMap((m) => [...m].filter(([, user]) => userSet.has(user)).map(([id]) => id)));
  };
  let convergence = checkConvergence(new Set(), new Set());
  await within(
    5000,
    async () => {
      const [truth, listed] = await Promise.all([truthNow(), listedSessions(server.client, episode.users)]);
      convergence = checkConvergence(truth, listed);
      return convergence.converged;
    },
    200,
  );
  checks.expect(
    convergence.converged,
    `${label}: ListSessions differs from the clients: ${convergence.extra.length} listed that no client holds (${convergence.extra.slice(0, 3).join(', ')}), ` +
      `${convergence.missing.length} held but not listed (${convergence.missing.slice(0, 3).join(', ')})`,
  );

  const delay = await loopDelay(server);
  // Everyone leaves: the node must be back to what it held idle.
  await Promise.all([healthy.close(), ...episode.live.map((f) => f.close())]);
  await Promise.all([healthy.drain(), ...episode.fleets.map((f) => f.drain())]);
  const differs = await backToBaseline(server, baseline);
  checks.expect(differs === '', `${label}: the node idle after the way still holds ${differs}`);

  const ledger = checkLedger({
    calls,
    receipts: [...mine(healthy.receipts), ...vanishingReceipts],
    sessions: [...mine(healthy.spans), ...episode.fleets.flatMap((f) => mine(f.spans))],
  });
  figures[`${label}: gone mid-ack`] = gone;
  if (episode.processes > 0) figures[`${label}: processes`] = episode.processes;
  for (const status of ['disconnected', 'timeout', 'acked', 'failed', 'unknown'] as const) {
    const n = statuses.get(status) ?? 0;
    if (n > 0 || status === 'disconnected' || status === 'timeout') figures[`${label}: ${status.toUpperCase()}`] = n;
  }
  figures[`${label}: ambiguous`] = ledger.ambiguous;
  figures[`${label}: ledger violations`] = ledger.violations.length;
  figures[`${label}: healthy delivery p50 ms`] = Math.round(percentile(deliveredMs, 50));
  figures[`${label}: healthy delivery p99 ms`] = Math.round(percentile(deliveredMs, 99));
  figures[`${label}: noticed p50 ms`] = Math.round(percentile(noticedMs, 50));
  figures[`${label}: noticed p99 ms`] = Math.round(noticedP99);
  figures[`${label}: node event-loop delay p99 ms`] = Math.round(delay.p99Ms);
  if (episode.unlistedMs.length > 0) {
    figures[`${label}: unlisted p50 ms`] = Math.round(percentile(episode.unlistedMs, 50));
    figures[`${label}: unlisted p99 ms`] = Math.round(percentile(episode.unlistedMs, 99));
    figures[`${label}: ListSessions sweep ms`] = Math.round(percentile(episode.sweepMs, 50));
  }
}

/** Why a call's results are not (vanished DISCONNECTED or TIMEOUT, healthy ACKED); '' when they are. */
function callProblem(call: CallRecord, vanished: CallRecord['results'], others: CallRecord['results']): string {
  if (call.code !== 0) return `ended with gRPC code ${String(call.code)}`;
  if (vanished.length !== 1) return `${vanished.length} results of vanishing sessions (1 expected)`;
  if (others.length !== 1) return `${others.length} results of healthy sessions (1 expected)`;
  const [v, h] = [vanished[0]!, others[0]!];
  if (v.status !== 'disconnected' && v.status !== 'timeout') return `the vanished session ${v.sessionId} is ${v.status.toUpperCase()}`;
  if (h.status !== 'acked') return `the healthy session ${h.sessionId} is ${h.status.toUpperCase()}`;
  return '';
}
