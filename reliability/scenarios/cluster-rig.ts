import { type BenchServer, startServer } from '../../bench/lib/fixtures.js';
import type { PushServiceClient } from '../../src/gen/pushgate/v1/push_service.js';
import { FAST_CLUSTER_ENV } from '../../test/support/cluster.js';
import { startRedis, type TestRedis } from '../../test/support/redis-server.js';
import { Fleet, type Target } from '../lib/fleet.js';
import { internals, within } from '../lib/internals.js';
import { type ConvergenceReport, checkConvergence, type PresenceChange } from '../lib/ledger.js';
import { type RedisRelay, startRedisRelay } from '../lib/redis-relay.js';
import { listedSessions } from '../lib/registry-view.js';
import type { Checks } from '../lib/scenario.js';

/** Nodes of the rig; node i's sessions are held by fleet i, so a node's sessions are known apart. */
export const NODES = 3;
/** A listing that takes longer than this counts as "not converged" (the node asked may be cut off). */
const LISTING_TIMEOUT_MS = 3000;

/**
 * Three pushgate processes in cluster mode on one private redis-server, each reaching it through a
 * relay of its own (reliability/lib/redis-relay.ts) that can blackhole the path or drop bus
 * frames, and one fleet process per node holding that node's sessions. Users have sessions on one
 * node ("solo" users, every fifth) or on two, so pushes cross the bus and a node's death leaves
 * some users with no session at all (their storing pushes go to the inbox).
 */
export class ClusterRig {
  /** Restarts so far of each node: a restarted node is a new process with a new node id. */
  private readonly generations = Array.from({ length: NODES }, () => 1);

  private constructor(
    /** The private redis-server, unless the rig runs on a Redis Cluster (`options.redisCluster`). */
    readonly redis: TestRedis | undefined,
    /** One per node, between it and `redis`; none on a Redis Cluster. */
    readonly relays: readonly RedisRelay[],
    readonly nodes: BenchServer[],
    readonly fleets: readonly Fleet[],
    readonly userIds: readonly string[],
    private readonly nodeEnv: Record<string, string>,
  ) {}

  /**
   * `logLevel` is the nodes' (their first lines are echoed, bench/lib/children.ts): 'error' keeps a
   * run quiet. With `redisCluster` (seed URLs) the nodes use that Redis Cluster directly, and the
   * caller owns it.
   */
  static async start(users: number, options: { logLevel?: string; redisCluster?: readonly string[] } = {}): Promise<ClusterRig> {
    const redis = options.redisCluster === undefined ? await startRedis() : undefined;
    const relays: RedisRelay[] = [];
    const nodes: BenchServer[] = [];
    const fleets: Fleet[] = [];
    const rig = new ClusterRig(
      redis,
      relays,
      nodes,
      fleets,
      Array.from({ length: users }, (_, u) => `cf-${u}`),
      {
        LOG_LEVEL: options.logLevel ?? 'error',
        ...(options.redisCluster !== undefined && { REDIS_URL: options.redisCluster.join(','), PUSHGATE_REDIS_CLUSTER: '1' }),
      },
    );
    try {
      if (redis !== undefined) for (let i = 0; i < NODES; i++) relays.push(await startRedisRelay(redis.port));
      // One after another, so each finds the others' leases (as test/support/cluster.ts does).
      for (let i = 0; i < NODES; i++) nodes.push(await rig.startNode(i));
      for (let i = 0; i < NODES; i++) fleets.push(await Fleet.start(1));
    } catch (err) {
      await rig.stop();
      throw err;
    }
    return rig;
  }

  /** Which nodes user u has a session on: its home node, and the next one unless it is a solo user. */
  static nodesOf(u: number): number[] {
    const home = u % NODES;
    return u % 5 === 0 ? [home] : [home, (home + 1) % NODES];
  }

  /** Users whose only session is on node `i`. */
  soloUsersOf(i: number): string[] {
    return this.userIds.filter((_, u) => ClusterRig.nodesOf(u).length === 1 && ClusterRig.nodesOf(u)[0] === i);
  }

  /** The sessions node i should hold, addressed to its current process. */
  targetsOf(i: number): Target[] {
    const url = this.nodes[i]!.httpUrl;
    return this.userIds.flatMap((userId, u) => {
      const at = ClusterRig.nodesOf(u).indexOf(i);
      return at < 0 ? [] : [{ userId, clientType: at === 0 ? 'app' : 'web', url }];
    });
  }

  /** The nodes' gRPC addresses now (a restarted node has a new one). */
  addresses(): string[] {
    return this.nodes.map((n) => n.grpcAddress);
  }

  /** Starts node i's next process (its old one must be dead); returns it and puts it in `nodes`. */
  async restartNode(i: number): Promise<BenchServer> {
    this.generations[i]!++;
    const node = await this.startNode(i);
    this.nodes[i] = node;
    return node;
  }

  nodeId(i: number): string {
    return `n${i}-g${this.generations[i]}`;
  }

  /** The clients' ground truth (session ids), of every fleet or of the given nodes' fleets. */
  async truth(nodes: readonly number[] = [...this.fleets.keys()]): Promise<Set<string>> {
    const maps = await Promise.all(nodes.map((i) => this.fleets[i]!.truth()));
    return new Set(maps.flatMap((m) => [...m.keys()]));
  }

  /**
   * Rule 6 now: the registry as node `via` lists it, and each presence stream replayed, against
   * the clients' truth. A listing that fails or times out (Redis away) is "not converged".
   */
  async convergence(via: number, streams: readonly PresenceStream[]): Promise<ConvergenceReport | { error: string }> {
    try {
      const truth = await this.truth();
      const listed = await withTimeout(listedSessions(this.client(via), this.userIds), LISTING_TIMEOUT_MS, 'ListSessions');
      // The truth again: a session that closed meanwhile would otherwise look like an extra.
      const after = await this.truth();
      if (after.size !== truth.size || [...after].some((s) => !truth.has(s))) return { error: 'the clients changed during the look' };
      return checkConvergence(truth, listed, streams);
    } catch (err) {
      return { error: (err as Error).message };
    }
  }

  /**
   * Polls `convergence` every 150 ms until it holds or `boundMs` passes; `ms` counts from `fromMs`
   * (the heal). `last` says what still differed when it did not converge.
   */
  async waitConverged(
    via: number,
    streams: readonly PresenceStream[],
    fromMs: number,
    boundMs: number,
  ): Promise<{ ok: boolean; ms: number; last: string }> {
    let last = '';
    for (;;) {
      const report = await this.convergence(via, streams);
      if ('converged' in report && report.converged) return { ok: true, ms: Date.now() - fromMs, last: '' };
      last = describe(report);
      if (Date.now() - fromMs > boundMs) return { ok: false, ms: Date.now() - fromMs, last };
      await sleep(150);
    }
  }

  /**
   * After every session closed: each node must hold no session, socket, ack wait, call or presence
   * stream within 10 s, and ListSessions (through node `via`) must list nothing within 10 s (an
   * unregister may trail the close by a failed write and the next sync). Failures go to `checks`,
   * prefixed with `label`; resolves with the ms until ListSessions was empty.
   */
  async expectEmpty(checks: Checks, via: number, label: string): Promise<number> {
    for (const [i, node] of this.nodes.entries()) {
      let last = 'no answer';
      const empty = await within(10_000, async () => {
        const now = await withTimeout(internals(node), 2000, `node ${i}'s internals`);
        const held = {
          localSessions: now.localSessions,
          sockets: now.sockets,
          pendingWaits: now.pendingWaits,
          callsInFlight: now.callsInFlight,
          presenceSubscribers: now.presenceSubscribers,
        };
        last = JSON.stringify(held);
        return Object.values(held).every((n) => n === 0);
      });
      checks.expect(empty.ok, `${label}node ${i} holds nothing within 10 s of the close; it holds ${last}`);
    }
    let listed = -1;
    const emptied = await within(10_000, async () => {
      listed = (await withTimeout(listedSessions(this.client(via), this.userIds), 5000, 'ListSessions')).size;
      return listed === 0;
    });
    checks.expect(
      emptied.ok,
      `${label}ListSessions lists nothing within 10 s after every session closed; it lists ${listed}${emptied.ok ? '' : await this.whoHolds()}`,
    );
    return Math.round(emptied.ms);
  }

  /** For a failure message: which node ids' session sets in Redis still have members, and the leases. */
  private async whoHolds(): Promise<string> {
    if (this.redis === undefined) return '';
    const redis = this.redis.client();
    try {
      const sets = await redis.keys('soak:*:node:*');
      const sizes = await Promise.all(sets.map(async (key) => `${key.replace(/^.*:node:/, '')}: ${await redis.scard(key)}`));
      const leases = await redis.zrange('soak:{nodes}:leases', '0', '-1');
      return ` (in Redis, sessions by node: ${sizes.join(', ') || 'none'}; leases: ${leases.join(', ')}; live nodes: ${this.nodes.map((_, i) => this.nodeId(i)).join(', ')})`;
    } catch (err) {
      return ` (Redis not read: ${(err as Error).message})`;
    } finally {
      redis.disconnect();
    }
  }

  client(i: number): PushServiceClient {
    return this.nodes[i]!.client;
  }

  /**
   * Stops everything; idempotent. Resolves with a problem to report ('' if none): a relay that does
   * not finish closing in 5 s is left behind rather than hanging the run.
   */
  async stop(): Promise<string> {
    await Promise.allSettled(this.fleets.map((f) => f.stop()));
    await Promise.allSettled(this.nodes.map((n) => n.stop()));
    let problem = '';
    await withTimeout(Promise.allSettled(this.relays.map((r) => r.close())), 5000, 'RedisRelay.close()').catch((err: Error) => {
      problem = `${err.message} (its sockets never all closed); the run went on without it`;
    });
    await this.redis?.stop();
    return problem;
  }

  private startNode(i: number): Promise<BenchServer> {
    return startServer(this.nodeId(i), 'pushgate', {
      ...FAST_CLUSTER_ENV,
      ...(this.relays[i] !== undefined && { REDIS_URL: this.relays[i]!.url }),
      PUSHGATE_REDIS_PREFIX: 'soak:',
      PUSHGATE_NODE_ID: this.nodeId(i),
      // The convergence polls list every user several times a second: the harness's reads, not load.
      PUSHGATE_RATE_READ_PER_SECOND: '0',
      ...this.nodeEnv,
    });
  }
}

export interface PresenceStream {
  readonly initial: ReadonlySet<string>;
  readonly events: readonly PresenceChange[];
}

function describe(report: ConvergenceReport | { error: string }): string {
  if ('error' in report) return report.error;
  const streams = report.streams.map((s, i) => `stream ${i}: extra ${s.extra.length}, missing ${s.missing.length}`).join('; ');
  return `registry: extra ${report.extra.length} (${report.extra.slice(0, 3).join(' ')}), missing ${report.missing.length} (${report.missing.slice(0, 3).join(' ')}); ${streams}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `promise`, or a rejection naming `what` after `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
