/** A rate: `perSecond` sustained, up to `burst` at once. */
export interface Rate {
  readonly perSecond: number;
  readonly burst: number;
}

/**
 * Admits or refuses one more action of a key (a caller, a scope) within its rate. The memory
 * implementation limits one node; the Redis one limits the whole cluster (every node draws from
 * the same bucket).
 *
 * Contract: `consume` resolves to 0 when the action is admitted, or to the milliseconds after which
 * it would be; it never throws for a key that is over its rate. If the backing store cannot be
 * reached it rejects with PushgateError `registry_unavailable` (callers decide whether to fail
 * open); it never queues without bound.
 */
export interface RateLimiter {
  consume(key: string, rate: Rate): Promise<number>;
  close(): Promise<void>;
}
