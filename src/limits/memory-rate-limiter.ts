import { performance } from 'node:perf_hooks';
import type { Rate, RateLimiter } from '../domain/rate-limiter.js';

/**
 * What a `Rate` means in both limiters (this one and RedisRateLimiter): a token bucket, computed as
 * GCRA. The bucket holds `burst` tokens and refills continuously at `perSecond` tokens a second,
 * never above `burst`; each admitted call takes one token. So an idle key admits `burst` calls at
 * once, a busy key one call every 1000/perSecond ms, and in any t seconds at most
 * `burst + perSecond × t` calls. A refused call takes nothing; its hint is the time until the next
 * token, at most ⌈1000/perSecond⌉ ms (plus 1 ms of rounding), and waiting it is enough.
 *
 * A key's whole state is one time: when its bucket is full again. A full bucket and no state are
 * the same thing, so state can expire (Redis) or be swept (memory) as soon as that time passes.
 */
export interface TokenBucket {
  /** ms one token takes to come back: 1000 / perSecond. */
  readonly intervalMs: number;
  /** ms an empty bucket takes to fill: burst × intervalMs. */
  readonly depthMs: number;
}

/** Rounding room for sums of fractional intervals: the `burst`-th call of a full bucket is never refused by a float. */
export const TOKEN_BUCKET_EPSILON_MS = 0.001;

/** The bucket of a rate; throws RangeError for a rate no bucket can honour (0 per second means "no limit": do not call). */
export function tokenBucket(rate: Rate): TokenBucket {
  if (!(Number.isFinite(rate.perSecond) && rate.perSecond > 0)) {
    throw new RangeError(`rate.perSecond must be a positive number, got ${rate.perSecond}`);
  }
  if (!(Number.isInteger(rate.burst) && rate.burst >= 1)) {
    throw new RangeError(`rate.burst must be a whole number of calls, at least 1, got ${rate.burst}`);
  }
  const intervalMs = 1000 / rate.perSecond;
  return { intervalMs, depthMs: rate.burst * intervalMs };
}

/** Below this many keys of one rate nothing is swept; above it, a sweep runs whenever the count doubles. */
const MIN_SWEEP_SIZE = 1024;

interface Buckets {
  readonly bucket: TokenBucket;
  /** Key → when its bucket is full again (ms, performance.now()). */
  readonly fullAtMs: Map<string, number>;
  sweepAbove: number;
}

/**
 * Rate limits of this process only (the single-node default). Time is the monotonic clock, so a
 * wall-clock step neither frees nor locks callers. Keys whose bucket has refilled are swept when a
 * rate's key count doubles, so memory follows the callers active in the last `burst/perSecond` s.
 */
export class MemoryRateLimiter implements RateLimiter {
  /** One entry per distinct rate (a few: one per scope). */
  private readonly byRate = new Map<string, Buckets>();

  async consume(key: string, rate: Rate): Promise<number> {
    const buckets = this.bucketsOf(rate);
    const { intervalMs, depthMs } = buckets.bucket;
    const now = performance.now();
    const fullAfterMs = Math.max(buckets.fullAtMs.get(key) ?? now, now) + intervalMs - now;
    if (fullAfterMs > depthMs + TOKEN_BUCKET_EPSILON_MS) return Math.ceil(fullAfterMs - depthMs);
    buckets.fullAtMs.set(key, now + fullAfterMs);
    if (buckets.fullAtMs.size > buckets.sweepAbove) sweep(buckets, now);
    return 0;
  }

  async close(): Promise<void> {
    this.byRate.clear();
  }

  private bucketsOf(rate: Rate): Buckets {
    const id = `${rate.perSecond}/${rate.burst}`;
    let buckets = this.byRate.get(id);
    if (buckets === undefined) {
      buckets = { bucket: tokenBucket(rate), fullAtMs: new Map(), sweepAbove: MIN_SWEEP_SIZE };
      this.byRate.set(id, buckets);
    }
    return buckets;
  }
}

function sweep(buckets: Buckets, now: number): void {
  for (const [key, fullAt] of buckets.fullAtMs) {
    if (fullAt <= now) buckets.fullAtMs.delete(key);
  }
  buckets.sweepAbove = Math.max(MIN_SWEEP_SIZE, 2 * buckets.fullAtMs.size);
}
