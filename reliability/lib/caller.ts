import { type Child, spawnChild } from '../../bench/lib/children.js';
import type { CallRecord } from './ledger.js';

export interface PushPlan {
  /** gRPC addresses (host:port); calls go to them in turn. */
  readonly addresses: readonly string[];
  /** Users pushed to in turn. */
  readonly users: readonly string[];
  readonly ratePerSec: number;
  readonly durationMs: number;
  readonly mode?: CallRecord['mode'];
  readonly ackTimeoutMs?: number;
  /** The gRPC deadline of each call. Default: ack timeout + 2 s. */
  readonly deadlineMs?: number;
}

/**
 * Caller processes (caller-child.ts) pushing at a steady rate, and the caller side of the ledger:
 * `drain()` gathers their call records into `calls`.
 */
export class Caller {
  readonly calls: CallRecord[] = [];

  private constructor(private readonly procs: readonly Child[]) {}

  static async start(processes = 1): Promise<Caller> {
    const procs = Array.from({ length: processes }, () => spawnChild(new URL('./caller-child.ts', import.meta.url), []));
    await Promise.all(procs.map((p) => p.ready));
    return new Caller(procs);
  }

  /** Pushes as `plan` says, the rate split over the processes (each takes every n-th user); resolves when every call ended. */
  async push(plan: PushPlan): Promise<{ calls: number; sentMs: number }> {
    const n = this.procs.length;
    const ackTimeoutMs = plan.ackTimeoutMs ?? 5000;
    const answers = await Promise.all(
      this.procs.map((p, i) =>
        p.request<{ calls: number; sentMs: number }>(
          'push',
          {
            addresses: plan.addresses,
            users: plan.users.filter((_, j) => j % n === i),
            ratePerSec: plan.ratePerSec / n,
            durationMs: plan.durationMs,
            mode: plan.mode ?? 'live',
            ackTimeoutMs,
            deadlineMs: plan.deadlineMs ?? ackTimeoutMs + 2000,
          },
          plan.durationMs + ackTimeoutMs + 120_000,
        ),
      ),
    );
    return { calls: answers.reduce((s, a) => s + a.calls, 0), sentMs: Math.max(...answers.map((a) => a.sentMs)) };
  }

  /** Fetches the calls that ended; with `all`, the ones still open too (checked as hangs). */
  async drain(all = false): Promise<void> {
    const answers = await Promise.all(this.procs.map((p) => p.request<{ calls: CallRecord[] }>('drain', { all }, 120_000)));
    for (const { calls } of answers) for (const call of calls) this.calls.push(call);
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.kill()));
  }
}
