import type { Caller } from '../lib/caller.js';
import type { LedgerReport } from '../lib/ledger.js';
import { PresenceTap } from '../lib/registry-view.js';
import type { Checks } from '../lib/scenario.js';
import { checkPhase, failedByCode } from './cluster-ledger.js';
import { OBSERVER } from './cluster-phases.js';
import { NODE_TIMEOUT_MS, startReplicatedCluster } from './cluster-redis-cluster.js';
import { ClusterRig, NODES, sleep } from './cluster-rig.js';

/** The registry's only shard (PUSHGATE_REDIS_SHARDS=1): its primary is the one that fails. */
const REGISTRY_KEY = '{s0}';

export interface FailoverPlan {
  readonly users: number;
  readonly ratePerSec: number;
  readonly leadMs: number;
  readonly tailMs: number;
  readonly ackTimeoutMs: number;
  readonly deadlineMs: number;
  readonly boundMs: number;
}

/**
 * Three nodes on a Redis Cluster of three primaries with a replica each, under steady pushes: the
 * primary holding the registry is killed (-9) and its replica promoted. Figures: how long the
 * promotion took, calls and their failures, the time from the promotion until the registry and a
 * presence stream agree with the clients; then every node must let go of everything once the
 * sessions close. Returns the ledger of its calls (its own fleets' receipts).
 */
export async function runFailover(
  plan: FailoverPlan,
  caller: Caller,
  checks: Checks,
  log: (message: string) => void,
): Promise<{ figures: Record<string, number | string>; report: LedgerReport }> {
  const cluster = await startReplicatedCluster();
  let rig: ClusterRig | undefined;
  let tap: PresenceTap | undefined;
  try {
    rig = await ClusterRig.start(plan.users, { redisCluster: cluster.urls });
    const live = rig;
    for (let i = 0; i < NODES; i++) {
      const connected = await live.fleets[i]!.connect(live.targetsOf(i));
      checks.expect(
        connected.failed === 0,
        `failover: every session connects to node ${i}; ${connected.failed} failed (${connected.firstError})`,
      );
    }
    tap = new PresenceTap(() => live.client(OBSERVER));
    await tap.snapshot();
    const before = await live.waitConverged(OBSERVER, [tap], Date.now(), plan.boundMs);
    checks.expect(before.ok, `failover: the registry agrees with the clients before the failover; ${before.last}`);

    log(`failover: pushing live at ${plan.ratePerSec}/s on a Redis Cluster; the registry's primary dies after ${plan.leadMs} ms`);
    const from = caller.calls.length;
    const pushing = caller.push({
      addresses: live.addresses(),
      users: live.userIds,
      ratePerSec: plan.ratePerSec,
      durationMs: plan.leadMs + NODE_TIMEOUT_MS * 3 + plan.tailMs,
      mode: 'live',
      ackTimeoutMs: plan.ackTimeoutMs,
      deadlineMs: plan.deadlineMs,
    });
    await sleep(plan.leadMs);
    const killedAt = Date.now();
    await cluster.killPrimaryOf(REGISTRY_KEY);
    await cluster.waitHealthy(REGISTRY_KEY, plan.boundMs);
    const promotedAt = Date.now();
    const converged = await live.waitConverged(OBSERVER, [tap], promotedAt, plan.boundMs);
    checks.expect(
      converged.ok,
      `failover: the registry and the presence stream agree with the clients within ${plan.boundMs} ms of the promotion; still: ${converged.last}`,
    );
    log(
      `failover: replica promoted in ${promotedAt - killedAt} ms; ${converged.ok ? `converged in ${converged.ms} ms` : `NOT converged (${converged.last})`}`,
    );
    await pushing;
    await caller.drain();
    const calls = caller.calls.slice(from);
    await Promise.all(live.fleets.map((f) => f.drain()));
    const { report, excusedMissing } = checkPhase(
      calls,
      live.fleets.flatMap((f) => f.receipts),
      live.fleets.flatMap((f) => f.spans),
      { fromMs: killedAt, toMs: promotedAt + converged.ms, sessions: 'all' },
    );

    tap.close();
    await Promise.all(live.fleets.map((f) => f.close()));
    const emptyMs = await live.expectEmpty(checks, OBSERVER, 'failover: ');
    return {
      report,
      figures: {
        calls: report.calls,
        'failed calls': failedByCode(report),
        'ambiguous results': report.ambiguous,
        'ms from the kill until the replica was promoted': promotedAt - killedAt,
        'convergence ms': converged.ms,
        'presence resumes refused': tap.refusals.length,
        'presence stream reopened': tap.reopened,
        'results excused while the registry had lost sessions': excusedMissing,
        'ms until ListSessions was empty after every session closed': emptyMs,
      },
    };
  } finally {
    tap?.close();
    await rig?.stop();
    await cluster.stop();
  }
}
