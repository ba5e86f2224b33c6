import { type ClientReadableStream, Metadata, type ServiceError } from '@grpc/grpc-js';
import { type BenchServer, sleep, startServer } from '../../bench/lib/fixtures.js';
import { cpuMs } from '../../bench/lib/measure.js';
import { PresenceEventKind } from '../../src/gen/pushgate/v1/presence.js';
import {
  DeliveryStatus,
  PushToUserRequest,
  type PushToUserResponse,
  type WatchPresenceResponse,
} from '../../src/gen/pushgate/v1/push_service.js';
import { Caller } from '../lib/caller.js';
import { Fleet, type Target } from '../lib/fleet.js';
import { type Internals, internals, MiB, percentile, round, waitForNode } from '../lib/internals.js';
import { type CallRecord, checkLedger } from '../lib/ledger.js';
import { listedSessions } from '../lib/registry-view.js';
import { Checks, type Scenario, type ScenarioOutcome } from '../lib/scenario.js';

/**
 * Slow consumers under load (issue 13): sessions that stop reading (their fleet process frozen
 * with SIGSTOP, so the kernel buffers fill and the node's queue grows) are sent large pushes until
 * the node closes them for PUSHGATE_MAX_CLIENT_BUFFER_BYTES (`slow_consumer`), while other users
 * get pushes at a steady rate through the Caller. Their p99 is measured in three phases: alone
 * (baseline), beside the same large pushes to the same sessions while they still read (control:
 * what the traffic costs), and with those sessions stalled (what slow consumers add). The node's RSS
 * must stay within what the byte bound allows.
 */

/** The node's byte bound (its default), stated here so the RSS bound can be derived from it. */
const MAX_CLIENT_BUFFER_BYTES = 4 * MiB;
/** How long past the slow phase the large pushes may go on for the last slow session to be closed. */
const SLOW_GRACE_MS = 20_000;
/** Socket.IO ping interval and timeout of the node: longer than a phase (see the server's env). */
const HEARTBEAT_MS = 120_000;
/** Pushes to the normal users before the baseline, not counted in its figures. */
const WARM_UP_MS = 2000;
const BLOB = 'x'.repeat(200_000);
/** Every n-th large push waits for acks (that never come): the close must free those waits too. */
const ACK_EVERY = 5;
/**
 * The node's RSS may grow by twice what the slow sessions may hold (each its byte bound plus two
 * pushes in flight): the queued packets are strings and buffers freed only when the garbage
 * collector comes round, and V8 lets its heap grow to about twice what is live before it
 * collects. Plus a fixed slack for everything else the phase allocates.
 */
const RSS_HEADROOM = 2;
const RSS_SLACK_BYTES = 64 * MiB;
/**
 * In the full run, the normal users' p99 with slow consumers open may be this many times (or 50 ms
 * more than, whichever is larger) their p99 in the control phase: the same large pushes to the same
 * sessions while they still read. Against the baseline it is only reported: the traffic itself costs.
 */
const FULL_P99_RATIO_BOUND = 3;

interface Sizes {
  readonly normalUsers: number;
  readonly sessionsPerUser: number;
  readonly ratePerSec: number;
  readonly phaseMs: number;
  readonly slowUsers: number;
  readonly slowSessionsPerUser: number;
  /** Large pushes per second, over the slow users in turn. */
  readonly blobRate: number;
}

const QUICK: Sizes = {
  normalUsers: 100,
  sessionsPerUser: 2,
  ratePerSec: 100,
  phaseMs: 8000,
  slowUsers: 2,
  slowSessionsPerUser: 5,
  blobRate: 20,
};
const FULL: Sizes = {
  normalUsers: 500,
  sessionsPerUser: 2,
  ratePerSec: 300,
  phaseMs: 60_000,
  // Each slow session gets about 1.2 MB/s: it reaches the byte bound (and the kernel's buffers
  // before it) in seconds, well before Socket.IO's heartbeat (25 s + 20 s) would close it.
  // Many more slow sessions at that rate overload a 2-core machine (the control phase's clients
  // parse every byte).
  slowUsers: 4,
  slowSessionsPerUser: 5,
  blobRate: 24,
};

const CLIENT_TYPES = ['app', 'web', 'pc'];

export const slowConsumers: Scenario = {
  name: 'slow-consumers',
  summary:
    'sessions that stop reading get large pushes until the byte bound closes them (slow_consumer); other users keep their p99 and the node its memory',
  async run(ctx) {
    const sizes = ctx.quick ? QUICK : FULL;
    const checks = new Checks();
    const figures: Record<string, number | string> = {};
    const server = await startServer('slow-consumers', 'pushgate', {
      PUSHGATE_MAX_CLIENT_BUFFER_BYTES: String(MAX_CLIENT_BUFFER_BYTES),
      // Socket.IO's heartbeat would also close a frozen client (by default 25 s + 20 s), racing
      // the byte bound on a loaded machine; pushed out past the phase so the bound is what closes them.
      PUSHGATE_PING_INTERVAL_MS: String(HEARTBEAT_MS),
      PUSHGATE_PING_TIMEOUT_MS: String(HEARTBEAT_MS),
      PUSHGATE_RATE_PUSH_PER_SECOND: '0',
      PUSHGATE_RATE_READ_PER_SECOND: '0',
    });
    let normal: Fleet | undefined;
    let slow: Fleet | undefined;
    let caller: Caller | undefined;
    let watch: DisconnectWatch | undefined;
    try {
      [normal, slow, caller] = await Promise.all([Fleet.start(1), Fleet.start(1), Caller.start(1)]);
      const normalUsers = Array.from({ length: sizes.normalUsers }, (_, i) => `normal-${i}`);
      const slowUsers = Array.from({ length: sizes.slowUsers }, (_, i) => `stalled-${i}`);
      const slowSessions = sizes.slowUsers * sizes.slowSessionsPerUser;
      const normalSessions = sizes.normalUsers * sizes.sessionsPerUser;
      watch = new DisconnectWatch(server, slowUsers);
      for (const [fleet, targets] of [
        [normal, targetsOf(normalUsers, sizes.sessionsPerUser, server.httpUrl)],
        [slow, targetsOf(slowUsers, sizes.slowSessionsPerUser, server.httpUrl)],
      ] as const) {
        const connected = await fleet.connect(targets, { concurrency: 50 });
        if (connected.failed > 0) throw new Error(`${connected.failed} sessions failed to connect: ${connected.firstError}`);
      }
      await normal.behave({ onReceive: 'ack', ackDelayMs: 0 });
      const rss = new RssSampler(server);
      const plan = {
        addresses: [server.grpcAddress],
        users: normalUsers,
        ratePerSec: sizes.ratePerSec,
        durationMs: sizes.phaseMs,
        ackTimeoutMs: 3000,
      };

      // A warm-up first (connections, JIT), in the ledger but not in the figures.
      await caller.push({ ...plan, durationMs: WARM_UP_MS });
      await caller.drain();
      /**
       * Normal load for one phase, beside `blobs` if given, which go on after the phase until `done`;
       * what the normal users and the node saw.
       */
      const phase = async (blobs: BlobPusher | undefined, done: () => boolean = () => true): Promise<Phase> => {
        const first = caller!.calls.length;
        const startedMs = Date.now();
        const cpuStarted = cpuMs(server.pid);
        await server.child.request('internals', { resetDelay: true });
        const pushing = blobs?.run(() => Date.now() - startedMs >= sizes.phaseMs && done());
        await caller!.push(plan);
        const cpuPercent = round((100 * (cpuMs(server.pid) - cpuStarted)) / sizes.phaseMs);
        const { loopDelay } = await internals(server);
        await pushing;
        await caller!.drain();
        return { calls: caller!.calls.slice(first), startedMs, cpuPercent, loopDelay, rssPeak: rss.takePeak() };
      };

      ctx.log(`baseline: ${sizes.ratePerSec}/s to ${sizes.normalUsers} users for ${sizes.phaseMs} ms`);
      const baseline = await phase(undefined);

      ctx.log(`control: beside it, ${sizes.blobRate} pushes/s of ${BLOB.length / 1000} kB to ${slowSessions} sessions that read`);
      const readingBlobs = new BlobPusher(server, slowUsers, sizes.blobRate);
      const control = await phase(readingBlobs);
      checks.expect(
        watch.closed.length === 0 && readingBlobs.slowConsumerFailures === 0,
        `sessions that read should not be closed by large pushes; ${watch.closed.length} were (${readingBlobs.slowConsumerFailures} deliveries failed slow_consumer)`,
      );

      ctx.log(`slow phase: the ${slowSessions} sessions stop reading (SIGSTOP), the same large pushes go on`);
      process.kill(slow.procs[0]!.pid, 'SIGSTOP');
      const blobs = new BlobPusher(server, slowUsers, sizes.blobRate);
      // A slow session is closed by a push that finds its queue full: the pushes go on past the
      // phase (up to SLOW_GRACE_MS) until every one was.
      const slowStarted = Date.now();
      const stalled = await phase(
        blobs,
        () => watch!.closed.length >= slowSessions || Date.now() - slowStarted >= sizes.phaseMs + SLOW_GRACE_MS,
      );
      const closedAll = await waitUntil(() => watch!.closed.length >= slowSessions, 1000);
      process.kill(slow.procs[0]!.pid, 'SIGCONT');
      // The normal users' calls "while slow consumers were open": up to the last close (or the phase's end).
      const lastClosedMs = closedAll ? Math.max(...watch.closed.map((c) => c.atMs)) : Date.now();
      const whileOpen = stalled.calls.filter((c) => c.startedMs <= lastClosedMs);

      // What the normal users saw.
      const p99 = (calls: readonly CallRecord[]): number => percentile(tookOf(calls), 99);
      const p50 = (calls: readonly CallRecord[]): number => percentile(tookOf(calls), 50);
      const p99Base = p99(baseline.calls);
      const p99Open = p99(whileOpen);
      const p99Control = p99(control.calls);
      figures['normal sessions'] = normalSessions;
      figures['normal calls per phase'] = baseline.calls.length;
      figures['normal p50/p99 ms, baseline'] = `${round(p50(baseline.calls), 1)}/${round(p99Base, 1)}`;
      figures['normal p50/p99 ms, large pushes to reading sessions'] = `${round(p50(control.calls), 1)}/${round(p99Control, 1)}`;
      figures['normal p50/p99 ms, slow consumers open'] = `${round(p50(whileOpen), 1)}/${round(p99Open, 1)}`;
      figures['normal calls while slow consumers open'] = whileOpen.length;
      figures['normal p99 ms, whole slow phase'] = round(p99(stalled.calls), 1);
      figures['p99 ratio, slow consumers open / baseline'] = round(p99Open / p99Base, 2);
      figures['p99 ratio, slow consumers open / large pushes to reading sessions'] = round(p99Open / p99Control, 2);
      figures['node CPU % (baseline / control / slow)'] = `${baseline.cpuPercent} / ${control.cpuPercent} / ${stalled.cpuPercent}`;
      figures['node event-loop delay p99/max ms (baseline / control / slow)'] = [baseline, control, stalled]
        .map((p) => `${round(p.loopDelay.p99Ms)}/${round(p.loopDelay.maxMs)}`)
        .join(' / ');
      const all = [...baseline.calls, ...control.calls, ...stalled.calls];
      const notAcked = all.filter((c) => c.code !== 0 || c.results.some((r) => r.status !== 'acked'));
      checks.expect(
        notAcked.length === 0,
        `every push to the normal users should be ACKED by all their sessions; ${notAcked.length} of ${all.length} were not`,
      );
      if (!ctx.quick)
        checks.expect(
          p99Open <= Math.max(FULL_P99_RATIO_BOUND * p99Control, p99Control + 50),
          `the normal users' p99 with slow consumers open (${round(p99Open, 1)} ms) should stay within ${FULL_P99_RATIO_BOUND}× the p99 with the same large pushes to sessions that read (${round(p99Control, 1)} ms)`,
        );

      // The slow sessions: all closed by the byte bound, and said so.
      const reasons = countBy(watch.closed.map((c) => c.reason));
      figures['slow sessions'] = slowSessions;
      figures['slow sessions closed'] = watch.closed.length;
      figures['slow: closed after ms (last)'] = closedAll ? round(lastClosedMs - stalled.startedMs) : 'not all';
      figures['slow: large pushes'] = blobs.pushes;
      figures['large push max ms, no-ack/waiting for acks (control / slow)'] =
        `${round(readingBlobs.maxMs.noAck)}/${round(readingBlobs.maxMs.acked)} / ${round(blobs.maxMs.noAck)}/${round(blobs.maxMs.acked)}`;
      figures['slow: deliveries FAILED slow_consumer'] = blobs.slowConsumerFailures;
      figures['slow: deliveries SENT / TIMEOUT / DISCONNECTED'] =
        `${blobs.statuses.sent} / ${blobs.statuses.timeout} / ${blobs.statuses.disconnected}`;
      checks.expect(
        closedAll && reasons.slow_consumer === slowSessions,
        `all ${slowSessions} sessions that stopped reading should be closed as slow_consumer; presence reported ${JSON.stringify(reasons)}`,
      );
      checks.expect(
        blobs.slowConsumerFailures >= slowSessions,
        `each closed slow session should have failed a push with slow_consumer; ${blobs.slowConsumerFailures} deliveries did`,
      );
      for (const [name, pusher] of [
        ['control', readingBlobs],
        ['slow', blobs],
      ] as const)
        checks.expect(
          pusher.errors.length === 0,
          `the large pushes of the ${name} phase should all be answered; ${pusher.errors.length} failed, the first: ${pusher.errors[0] ?? ''}`,
        );
      const listed = await listedSessions(server.client, slowUsers);
      checks.expect(listed.size === 0, `the registry should list none of the slow sessions any more; it lists ${listed.size}`);

      // Memory: each slow session may hold its bound plus a push or two while it lives.
      rss.stop();
      const before = Math.max(baseline.rssPeak, control.rssPeak);
      const rssBound = before + RSS_HEADROOM * slowSessions * (MAX_CLIENT_BUFFER_BYTES + 2 * BLOB.length) + RSS_SLACK_BYTES;
      figures['node RSS MiB, peak (baseline / control / slow)'] =
        `${round(baseline.rssPeak / MiB)} / ${round(control.rssPeak / MiB)} / ${round(stalled.rssPeak / MiB)}`;
      figures['node RSS MiB, bound in the slow phase'] = round(rssBound / MiB);
      checks.expect(
        stalled.rssPeak <= rssBound,
        `the node's RSS should stay under ${round(rssBound / MiB)} MiB (the peak before + ${RSS_HEADROOM} × ${slowSessions} × (${MAX_CLIENT_BUFFER_BYTES / MiB} MiB + 2 pushes) + ${RSS_SLACK_BYTES / MiB} MiB); it reached ${round(stalled.rssPeak / MiB)} MiB`,
      );

      // Afterwards: the normal sessions only, nothing waiting.
      const settled = await waitForNode(
        server,
        (n) => n.localSessions === normalSessions && n.pendingWaits === 0 && n.callsInFlight === 0,
        5000,
      );
      checks.expect(
        settled.ms !== undefined,
        `after the slow phase the node should hold the ${normalSessions} normal sessions and no waits; it held ${settled.last.localSessions} sessions, ${settled.last.pendingWaits} waits, ${settled.last.callsInFlight} calls`,
      );
      const slowSeen = await waitUntil(async () => (await slow!.truth()).size === 0, 10_000);
      checks.expect(
        slowSeen,
        `once thawed, the slow clients should find their sockets closed; ${(await slow.truth()).size} still think they are open`,
      );

      await caller.drain(true);
      await normal.drain();
      const ledger = checkLedger({ calls: caller.calls, receipts: normal.receipts, sessions: normal.spans });
      return {
        figures,
        ledger,
        failures: checks.failures,
        notes: [
          `byte bound PUSHGATE_MAX_CLIENT_BUFFER_BYTES ${MAX_CLIENT_BUFFER_BYTES / MiB} MiB; RSS bound = the peak before the slow phase + ${RSS_HEADROOM} × slow sessions × (byte bound + 2 pushes of ${BLOB.length / 1000} kB) + ${RSS_SLACK_BYTES / MiB} MiB`,
          `Socket.IO ping interval and timeout ${HEARTBEAT_MS / 1000} s each, so that the byte bound, not the heartbeat, closes the frozen clients`,
          `the control phase sends the same large pushes to the same sessions while they still read: what the traffic itself costs the other users; the slow sessions are then that fleet process frozen with SIGSTOP; the large pushes (1 in ${ACK_EVERY} waiting for acks) go straight to the node, outside the ledger, which holds the normal users only`,
          ctx.quick
            ? 'the p99 ratio is reported, not checked, in the quick run (a shared 2-core machine is noisy)'
            : `the p99 with slow consumers open must stay within ${FULL_P99_RATIO_BOUND}× the control phase's (or +50 ms): the same large pushes to sessions that read, so what is measured is what the slow consumers add, not the traffic`,
        ],
      } satisfies ScenarioOutcome;
    } finally {
      watch?.close();
      if (slow !== undefined) {
        try {
          process.kill(slow.procs[0]!.pid, 'SIGCONT');
        } catch {
          // already gone
        }
      }
      await caller?.stop();
      await normal?.stop();
      await slow?.stop();
      await server.stop();
    }
  },
};

function targetsOf(users: readonly string[], perUser: number, url: string): Target[] {
  return users.flatMap((userId) =>
    Array.from({ length: perUser }, (_, k) => ({ userId, clientType: CLIENT_TYPES[k % CLIENT_TYPES.length]!, url })),
  );
}

/** The sessions of `users` that ended, with why, from a live WatchPresence stream. */
class DisconnectWatch {
  readonly closed: { sessionId: string; reason: string; atMs: number }[] = [];
  private readonly call: ClientReadableStream<WatchPresenceResponse>;

  constructor(server: BenchServer, users: readonly string[]) {
    this.call = server.client.watchPresence(
      { userIds: [...users], includeSnapshot: false, resumeAfter: '', maxEventsPerMessage: 100 },
      new Metadata(),
    );
    this.call.on('data', (response: WatchPresenceResponse) => {
      for (const event of response.event === undefined ? response.events : [response.event])
        if (event.kind === PresenceEventKind.PRESENCE_EVENT_KIND_SESSION_DISCONNECTED)
          this.closed.push({ sessionId: event.session?.sessionId ?? '', reason: event.reason, atMs: Date.now() });
    });
    this.call.on('error', () => {});
  }

  close(): void {
    this.call.cancel();
  }
}

/** Large pushes at a fixed rate to the slow users in turn, counting what the node answered. */
class BlobPusher {
  pushes = 0;
  slowConsumerFailures = 0;
  readonly statuses = { sent: 0, timeout: 0, disconnected: 0, other: 0 };
  readonly errors: string[] = [];
  /** The longest a large push took, of those without acks and of those waiting for acks. */
  readonly maxMs = { noAck: 0, acked: 0 };
  private started = 0;

  constructor(
    private readonly server: BenchServer,
    private readonly users: readonly string[],
    private readonly ratePerSec: number,
  ) {}

  async run(stop: () => boolean): Promise<void> {
    const started = performance.now();
    this.started = started;
    const calls: Promise<void>[] = [];
    for (let i = 0; !stop(); i++) {
      const wait = started + (i * 1000) / this.ratePerSec - performance.now();
      if (wait > 1) await sleep(wait);
      calls.push(this.pushOne(i));
    }
    await Promise.all(calls);
  }

  private pushOne(i: number): Promise<void> {
    const userId = this.users[i % this.users.length]!;
    const waitsForAcks = i % ACK_EVERY === ACK_EVERY - 1;
    const request = PushToUserRequest.fromPartial({
      userId,
      event: 'blob',
      data: { to: userId, blob: BLOB },
      noAck: !waitsForAcks,
      ackTimeoutMs: waitsForAcks ? 2000 : 0,
    });
    this.pushes++;
    const at = performance.now();
    return new Promise<void>((resolve) => {
      this.server.client.pushToUser(
        request,
        new Metadata(),
        { deadline: Date.now() + 15_000 },
        (err: ServiceError | null, response?: PushToUserResponse) => {
          const took = performance.now() - at;
          const kind = waitsForAcks ? 'acked' : 'noAck';
          this.maxMs[kind] = Math.max(this.maxMs[kind], took);
          if (err)
            this.errors.push(
              `push ${i} (${waitsForAcks ? 'waiting for acks' : 'no ack'}) to ${userId}, sent ${round(at - this.started)} ms into the phase, ended after ${round(took)} ms: ${err.code} ${err.details}`,
            );
          for (const d of response?.deliveries ?? []) {
            if (d.status === DeliveryStatus.DELIVERY_STATUS_FAILED && d.error.startsWith('slow_consumer:')) this.slowConsumerFailures++;
            else if (d.status === DeliveryStatus.DELIVERY_STATUS_SENT) this.statuses.sent++;
            else if (d.status === DeliveryStatus.DELIVERY_STATUS_TIMEOUT) this.statuses.timeout++;
            else if (d.status === DeliveryStatus.DELIVERY_STATUS_DISCONNECTED) this.statuses.disconnected++;
            else this.statuses.other++;
          }
          resolve();
        },
      );
    });
  }
}

/** The node's RSS, sampled until stopped. */
class RssSampler {
  private peak = 0;
  private readonly timer: NodeJS.Timeout;
  private busy = false;

  constructor(server: BenchServer) {
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      internals(server)
        .then((n) => (this.peak = Math.max(this.peak, n.rss)))
        .catch(() => {})
        .finally(() => (this.busy = false));
    }, 100);
  }

  /** The peak since the last call. */
  takePeak(): number {
    const peak = this.peak;
    this.peak = 0;
    return peak;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

interface Phase {
  /** The Caller's calls to the normal users in this phase. */
  readonly calls: CallRecord[];
  readonly startedMs: number;
  readonly cpuPercent: number;
  readonly loopDelay: Internals['loopDelay'];
  readonly rssPeak: number;
}

function tookOf(calls: readonly CallRecord[]): number[] {
  return calls.filter((c) => c.endedMs !== undefined).map((c) => c.endedMs! - c.startedMs);
}

async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

function countBy(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
