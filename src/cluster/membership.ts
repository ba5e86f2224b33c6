import type { Logger } from 'pino';
import type { RedisClient } from '../redis/client.js';
import type { RegistryRecovery } from '../registry/registry-recovery.js';
import type { ClusterKeys } from './cluster-keys.js';
import { defineLeaseScripts, type LeaseScripts } from './lease-scripts.js';

export interface MembershipDeps {
  /** The command connection; membership defines its lease scripts on it and follows its reconnects. */
  readonly client: RedisClient;
  readonly registry: RegistryRecovery;
  readonly keys: ClusterKeys;
  readonly nodeId: string;
  readonly leaseTtlMs: number;
  readonly reapIntervalMs: number;
  readonly log: Logger;
  /** Told whenever the node starts or stops being able to serve (Redis reachable, lease held). */
  readonly onHealthChange: (healthy: boolean) => void;
}

/** Dead nodes reaped per tick at most; the next tick takes the rest. */
const REAP_BATCH = 10;

/**
 * This node's place in the cluster. It renews the node's lease every third of its TTL, and after
 * any Redis trouble (lease lost, a failed write, a reconnect) syncs the sessions this node holds
 * back into Redis. Every reap interval it looks for nodes whose lease lapsed and reaps their
 * sessions, so a node that died without cleanup leaves no ghosts within lease TTL + reap interval.
 */
export class Membership {
  private healthy = false;
  private leaseTimer: NodeJS.Timeout | undefined;
  private reapTimer: NodeJS.Timeout | undefined;
  /** The running renewal, so a reconnect does not start a second one alongside. */
  private renewing: Promise<void> | undefined;
  private reaping: Promise<void> | undefined;
  private stopped = false;
  private clockOffsetMs = 0;
  private readonly scripts: LeaseScripts;
  /**
   * A renewal failed or the connection dropped: the lease may have lapsed and been reaped meanwhile
   * even if the next renewal finds it held (a renewal that timed out here can still reach Redis
   * late and renew the lapsed lease). The next successful renewal syncs to be sure.
   */
  private syncOwed = false;
  private readonly onReady = (): void => void this.renew();
  private readonly onConnectionLost = (): void => {
    this.syncOwed = true;
    this.setHealthy(false);
  };

  constructor(private readonly deps: MembershipDeps) {
    this.scripts = defineLeaseScripts(deps.client);
  }

  get isHealthy(): boolean {
    return this.healthy;
  }

  /** Now on the Redis server's clock (estimated at each renewal), so nodes agree on deadlines. */
  readonly now = (): number => Date.now() + this.clockOffsetMs;

  /** Ids of the nodes whose lease has not lapsed (read-only, for the dashboard); rejects when Redis does not answer. */
  async liveNodes(): Promise<string[]> {
    return this.deps.client.zrangebyscore(this.deps.keys.leases, `(${Math.floor(this.now())}`, '+inf');
  }

  /** Takes the lease (and syncs) once; fails if Redis does not answer. Then keeps it up. */
  async start(): Promise<void> {
    await this.renewOnce();
    const { client, leaseTtlMs, reapIntervalMs } = this.deps;
    client.on('ready', this.onReady);
    client.on('close', this.onConnectionLost);
    this.leaseTimer = setInterval(() => void this.renew(), Math.max(100, Math.floor(leaseTtlMs / 3)));
    this.reapTimer = setInterval(() => void this.reap(), reapIntervalMs);
  }

  /** Stops renewing and gives the lease up, so no one reaps this node's (already closed) sessions. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.leaseTimer);
    clearInterval(this.reapTimer);
    this.deps.client.off('ready', this.onReady);
    this.deps.client.off('close', this.onConnectionLost);
    await Promise.all([this.renewing, this.reaping]);
    await this.deps.client.zrem(this.deps.keys.leases, this.deps.nodeId).catch((err: unknown) => {
      this.deps.log.warn({ err }, 'could not give up the node lease; other nodes will reap it when it lapses');
    });
    this.setHealthy(false);
  }

  /** Looks for lapsed nodes, one pass at a time (a slow pass is not overlapped by the next tick). */
  private reap(): Promise<void> {
    this.reaping ??= this.reapOnce().finally(() => (this.reaping = undefined));
    return this.reaping;
  }

  private renew(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.renewing ??= this.renewOnce()
      .catch((err: unknown) => {
        this.syncOwed = true;
        this.setHealthy(false);
        this.deps.log.warn({ err: (err as Error).message }, 'node lease renewal failed; serving as unavailable until Redis answers');
      })
      .finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  private async renewOnce(): Promise<void> {
    const { keys, nodeId, leaseTtlMs, registry, log } = this.deps;
    const { scripts } = this;
    const sentAt = Date.now();
    const [held, redisNow] = (await scripts.run('pgLease', [keys.leases, keys.resync], [nodeId, leaseTtlMs])) as [number, number];
    // Redis time minus local time, read at the round trip's midpoint: nodes share one clock for deadlines.
    this.clockOffsetMs = redisNow - (sentAt + Date.now()) / 2;
    if (held === 0 || this.syncOwed || registry.needsSync) {
      this.syncOwed = false;
      const { restored, departed } = await registry.sync();
      if (restored > 0 || departed > 0) log.info({ restored, departed, leaseLost: held === 0 }, 'synced this node’s sessions into Redis');
    }
    this.setHealthy(true);
  }

  private async reapOnce(): Promise<void> {
    const { keys, nodeId, registry, log } = this.deps;
    const { scripts } = this;
    try {
      const lapsed = ((await scripts.run('pgLapsed', [keys.leases], [REAP_BATCH])) as string[]).filter((id) => id !== nodeId);
      for (const deadNode of lapsed) {
        const sessions = await registry.reapNode(deadNode);
        const forgotten = await scripts.run('pgForget', [keys.leases, keys.resync], [deadNode]);
        if (sessions > 0 || forgotten === 1) log.warn({ node: deadNode, sessions }, 'reaped the sessions of a node whose lease lapsed');
      }
      await registry.trim();
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'reaping failed; the next interval retries');
    }
  }

  private setHealthy(healthy: boolean): void {
    if (healthy === this.healthy) return;
    this.healthy = healthy;
    this.deps.onHealthChange(healthy);
  }
}
